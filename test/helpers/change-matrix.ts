// The change matrix -t files is held to on every engine: what a container does after it
// starts (run inside it with sh -c), by case. File names that try to inject carry a canary: a
// relative file a shell would create if a name ever ran as code.

export const hostileNames = (canary: string) => [
  'with space', 'tab\there', 'new\nline', 'ünïcødé-名前', '-leading-dash', '--', `$(touch ${canary})`,
  `\`touch ${canary}\``, `it's "quoted"`, 'semi;colon', 'back\\slash', '*', '.hidden',
];

const sq = (s: string) => s.replace(/'/g, `'\\''`);

export function changeCases(canary: string): Record<string, string> {
  return {
    'a: adds files and nested directories':
      'mkdir -p /new/a/b && echo x > /new/a/b/f && echo y > /tmp/t && mkdir /etc/app/conf.d && echo z > /etc/app/conf.d/z.conf',
    'b: modifies and chmods image files':
      'echo more >> /etc/motd && chmod 600 /etc/app/app.conf && chown 65534:65534 /data/keep.txt && chmod 700 /data',
    'c: deletes image files': 'rm /etc/motd /data/old/a.txt && rm -r /data/old/deep',
    'd: deletes an image directory and re-creates it with new content':
      'rm -rf /data/old && mkdir -p /data/old/deep && echo n > /data/old/new.txt && echo again > /data/old/a.txt',
    'e: renames files and a directory':
      'mv /etc/app/app.conf /etc/app/renamed.conf && mv /data/keep.txt /tmp/kept.txt && mv /data/old /data/older',
    'f: symlinks and hostile names': [
      'ln -s /etc/motd /tmp/link && ln -s dangling /tmp/dangling && mkdir "/tmp/dir with space"',
      ...hostileNames(canary).map((n) => `echo hi > '/tmp/${sq(n)}' && mkdir -p '/tmp/d-${sq(n)}/x'`),
    ].join(' && '),
    'i: makes device nodes and a fifo (devices other than whiteouts)':
      'mknod /tmp/cdev c 1 3 && mknod /tmp/bdev b 7 0 && mkfifo /tmp/fifo && mknod /etc/zero c 1 5',
    'h: opens an image file for writing without changing it': 'exec 3>>/etc/motd; exec 4>>/data/old/a.txt; true',
  };
}
