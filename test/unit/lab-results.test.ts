// src/results: the one result-file schema, its writer and its reader (issue 11 item 4).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  currentResults, deviceSlug, fromDirtyTree, historyResults, isResultFile, loadResults, newResult, resultFileName,
  resultFileProblem, writeResult, type ResultFile,
} from '../../src/results';

function result(partial: Partial<ResultFile>): ResultFile {
  return { bench: 'ckks', backend: 'cuda', device: 'NVIDIA H200', commit: 'abc', date: '2026-12-01T10:00:00Z', command: 'x', summary: {}, rows: [], ...partial };
}

describe('result files', () => {
  it('are written under <bench>-<backend>-<device-slug>.json and read back unchanged, with their path', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-results-'));
    const dir = path.join(root, 'datasets', 'results');
    const x = Math.random();
    const r = { ...newResult('pipeline', 'cpu', 'AMD EPYC 7B13', ['pipeline', '--quick']), summary: { base_tok_s: x }, rows: [{ setting: 'base', tok_s: x }] };
    expect(r.command).toBe('npm run bench -- pipeline --quick');
    expect(Number.isNaN(Date.parse(r.date))).toBe(false);
    const file = writeResult({ ...r, file: 'ignored' }, dir);
    expect(path.basename(file)).toBe('pipeline-cpu-amd-epyc-7b13.json');
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).file).toBeUndefined();
    const { results, skipped } = loadResults({ root });
    expect(skipped).toEqual([]);
    expect(results).toHaveLength(1);
    expect(results[0]).toEqual({ ...r, file: path.join('datasets', 'results', 'pipeline-cpu-amd-epyc-7b13.json') });
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('refuse malformed documents on write and skip them on read, with the reason', () => {
    expect(() => writeResult(result({ backend: 'tpu' as never }), os.tmpdir())).toThrow(/backend/);
    expect(resultFileProblem(result({ bench: 'nope' as never }))).toMatch(/unknown bench/);
    expect(resultFileProblem({ ...result({}), rows: {} })).toMatch(/rows/);
    expect(resultFileProblem(result({ date: 'yesterday' }))).toMatch(/date/);
    expect(isResultFile(result({}))).toBe(true);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-results-'));
    const dir = path.join(root, 'datasets', 'results');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'a.json'), '{ not json');
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ bench: 'ckks' }));
    const { results, skipped } = loadResults({ root });
    expect(results).toEqual([]);
    expect(skipped[0]).toMatch(/^a\.json: not valid JSON/);
    expect(skipped[1]).toMatch(/^b\.json: 'backend' is not a string/);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('current = the newest file per (bench, backend); older devices are history', () => {
    const h100 = result({ device: 'NVIDIA H100 80GB HBM3', date: '2026-11-26T10:00:00Z' });
    const h200 = result({ device: 'NVIDIA H200', date: '2026-12-02T10:00:00Z' });
    const cpu = result({ backend: 'cpu', device: 'AMD EPYC', date: '2026-11-20T10:00:00Z' });
    const other = result({ bench: 'model', device: 'NVIDIA H100 80GB HBM3' });
    expect(currentResults([h100, cpu, h200, other], 'ckks')).toEqual([h200, cpu]);
    expect(historyResults([h100, cpu, h200, other], 'ckks')).toEqual([h100]);
    expect(currentResults([h100, other])).toEqual([other, h100]); // newest first
  });

  it('name files and flag dirty trees', () => {
    expect(deviceSlug('Intel(R) Xeon(R) Processor')).toBe('intel-r-xeon-r-processor');
    expect(resultFileName(result({}))).toBe('ckks-cuda-nvidia-h200.json');
    expect(fromDirtyTree({ commit: 'abc-dirty' })).toBe(true);
    expect(fromDirtyTree({ commit: 'unknown' })).toBe(true);
    expect(fromDirtyTree({ commit: 'abc' })).toBe(false);
  });

  it('src/lab reads results through src/results and no longer imports src/bench', () => {
    const labDir = path.join(__dirname, '..', '..', 'src', 'lab');
    const files = fs.readdirSync(labDir, { recursive: true }).map(String).filter((f) => f.endsWith('.ts'));
    for (const f of files) expect(fs.readFileSync(path.join(labDir, f), 'utf8'), f).not.toMatch(/from '\.\.\/(\.\.\/)?bench\//);
  });
});
