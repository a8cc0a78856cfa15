// Issue 14: the private mode on two GPUs (client on one, server's HE on the other). The run itself
// needs a two-GPU machine (bench private --client-device 0 --server-device 1); here, on the CPU, the
// options are checked where they enter and the two-GPU result has its own file.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../../src/bench';
import { run as runPrivateBench } from '../../src/bench/private';
import { ExpertSet, writeSyntheticExperts } from '../../src/pipeline/experts';
import { currentResults, loadResults, newResult, writeResult } from '../../src/results';
import { PrivateEngine } from '../../src/server/private-engine';

describe('private mode device options (issue 14)', () => {
  it('bench private refuses --client-device / --server-device without CUDA, and a bad index', async () => {
    const cpu = parseBenchArgs(['private', '--backend', 'cpu', '--client-device', '0', '--server-device', '1']);
    await expect(runPrivateBench(cpu.args)).rejects.toThrow(/--client-device needs --backend cuda/);
    const cpuServer = parseBenchArgs(['private', '--backend', 'cpu', '--server-device', '1']);
    await expect(runPrivateBench(cpuServer.args)).rejects.toThrow(/--server-device needs --backend cuda/);
  });

  it('the private engine refuses a device for the CPU backend and a non-index at construction', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-devices-'));
    try {
      writeSyntheticExperts(path.join(tmp, 'e'), { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128 }, { specs: [{ name: 'qv', r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'] }] });
      const experts = new ExpertSet(path.join(tmp, 'e'));
      expect(() => new PrivateEngine({ experts, hiddenSize: 64, backend: 'cpu', device: 1 })).toThrow(/option 'device' selects a CUDA device; it does not apply to backend 'cpu'/);
      expect(() => new PrivateEngine({ experts, hiddenSize: 64, backend: 'cuda', device: -1 })).toThrow(/option 'device' must be a CUDA device index/);
      expect(() => new PrivateEngine({ experts, hiddenSize: 64, backend: 'cuda', device: 1.5 })).toThrow(/option 'device' must be a CUDA device index/);
      const plain = new PrivateEngine({ experts, hiddenSize: 64, backend: 'cpu' });
      plain.dispose();
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a two-GPU private result is written to its own file name and read back; a path is refused as a name', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-results-'));
    try {
      const r = newResult('private', 'cuda', 'NVIDIA H200', ['private', '--client-device', '0', '--server-device', '1']);
      r.summary.layers_tok_s_two_gpus = 12.5;
      const file = writeResult(r, dir, 'private-cuda-2x-nvidia-h200.json');
      expect(path.basename(file)).toBe('private-cuda-2x-nvidia-h200.json');
      const one = newResult('private', 'cuda', 'NVIDIA H200', ['private']);
      one.summary.layers_tok_s = 20;
      expect(path.basename(writeResult(one, dir))).toBe('private-cuda-nvidia-h200.json');
      r.summary.server_device = 1;
      writeResult(r, dir, 'private-cuda-2x-nvidia-h200.json');
      // both are current: the two-GPU file is a variant beside the one-GPU file, not its successor
      const current = currentResults(loadResults({ dir }).results, 'private');
      expect(current.map((c) => c.summary.layers_tok_s ?? c.summary.layers_tok_s_two_gpus).sort()).toEqual([12.5, 20]);
      expect(() => writeResult(r, dir, '../escape.json')).toThrow(/fileName must be a plain/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
