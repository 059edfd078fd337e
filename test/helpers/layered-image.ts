// Images as docker-archive tars (what docker save writes) that docker load, podman load and
// ctr images import all read, made without docker build or a registry: a base image's layers,
// then layers that callbacks fill in, and optional config changes (Cmd).
//
// writeLayeredImage: one tiny layer per /layers/NNN file. Enough layers make the engines mount
// with relative lowerdir paths (the mount data no longer fits a page): containers/storage
// mounts "l/<link>" from its home, containerd compacts its snapshot paths.
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface ImageChanges {
  /** Each fills an empty directory: its content becomes one layer on top of the base. */
  layers?: ((dir: string) => void)[];
  /** The image config's Cmd. */
  cmd?: string[];
}

/** Write IMAGE (name:tag) = BASE + changes to DIR as a docker-archive tar; returns its path. */
export function writeImageArchive(baseImage: string, image: string, changes: ImageChanges, dir: string): string {
  const work = mkdtempSync(path.join(os.tmpdir(), 'sp-image-'));
  try {
    const save = spawnSync('docker', ['save', baseImage], { maxBuffer: 512 << 20 });
    if (save.status !== 0) throw new Error(`docker save ${baseImage}: ${save.stderr}`);
    execFileSync('tar', ['-x', '-C', work], { input: save.stdout });
    const manifest = JSON.parse(readFileSync(path.join(work, 'manifest.json'), 'utf8'))[0];
    const baseConfig = JSON.parse(readFileSync(path.join(work, manifest.Config), 'utf8'));
    const layers: string[] = [...manifest.Layers];
    const diffIds: string[] = [...baseConfig.rootfs.diff_ids];
    (changes.layers ?? []).forEach((fill, i) => {
      const src = path.join(work, 'src', String(i));
      mkdirSync(src, { recursive: true });
      fill(src);
      const tar = execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '-C', src, '-c', '.'], { maxBuffer: 64 << 20 });
      const id = createHash('sha256').update(tar).digest('hex');
      mkdirSync(path.join(work, id), { recursive: true });
      writeFileSync(path.join(work, id, 'layer.tar'), tar);
      layers.push(`${id}/layer.tar`);
      diffIds.push(`sha256:${id}`);
    });
    rmSync(path.join(work, 'src'), { recursive: true, force: true });
    const config = {
      ...baseConfig,
      config: { ...baseConfig.config, ...(changes.cmd ? { Cmd: changes.cmd } : {}) },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map(() => ({ created: '1970-01-01T00:00:00Z', comment: 'sneakpeek test layer' })),
    };
    const configText = JSON.stringify(config);
    const configName = `${createHash('sha256').update(configText).digest('hex')}.json`;
    writeFileSync(path.join(work, configName), configText);
    writeFileSync(path.join(work, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [image], Layers: layers }]));
    rmSync(path.join(work, 'repositories'), { force: true });
    const out = path.join(dir, `${image.replace(/[^A-Za-z0-9.-]/g, '_')}.tar`);
    execFileSync('tar', ['-C', work, '-cf', out, '.']);
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** BASE + `extra` layers, layer i holding only /layers/NNN (i zero-padded to 3). */
export function writeLayeredImage(baseImage: string, image: string, extra: number, dir: string): string {
  const layers = Array.from({ length: extra }, (_, i) => (d: string) => {
    const n = String(i + 1).padStart(3, '0');
    mkdirSync(path.join(d, 'layers'));
    writeFileSync(path.join(d, 'layers', n), `${n}\n`);
  });
  return writeImageArchive(baseImage, image, { layers }, dir);
}
