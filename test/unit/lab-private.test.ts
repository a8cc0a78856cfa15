/**
 * lab.generate in the private mode (CPU, tiny model): keyOwner 'client' with server 'local' runs the
 * client here (the session's model, its own key) against an in-process private endpoint on the
 * session's experts over a real loopback WebSocket; the run has the private stages, bytes and
 * rounds, and its tokens equal plaintext LoRA's on the final hidden state. The standard private
 * figures build from a result file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab';
import { loraDeltaReference } from '../../src/pipeline/adapter';
import { Pipeline } from '../../src/pipeline/pipeline';
import { privateRttFigure, privateStagesFigure, privateBytesFigure, privatePrecisionFigure } from '../../src/lab/figures';

let lab: Lab;
beforeAll(async () => {
  lab = await Lab.open({ backend: 'cpu', small: true });
  lab.useService(await Pipeline.open({ backend: 'cpu', model: 'tiny', polyN: 8192 }));
});
afterAll(async () => {
  await lab?.dispose();
});

describe("lab.generate with keyOwner 'client'", () => {
  it("runs the private mode against a local server and matches plaintext LoRA's tokens", async () => {
    const run = await lab.generate('What is a savings account?', { keyOwner: 'client', server: 'local', expert: 'banking_expert', maxTokens: 8, stopAtEos: false });
    expect(run.summary.tokens).toBe(8);
    expect(run.summary.protocol).toBe('two-round');
    expect(run.summary.roundsPerToken).toBe(2);
    expect(run.breakdown().numRows()).toBe(7);
    expect(run.records().columnNames()).toEqual(expect.arrayContaining(['server_he', 'network', 'bytes_up', 'rounds']));
    expect(run.source()).toMatch(/measured here/);
    // reference: the same model, the final-hidden pair in float64 plaintext
    const pipe = (lab as unknown as { service: Pipeline }).service;
    const adapter = pipe.expertSet.get('banking_expert');
    const pair = adapter.finalHiddenPair(64);
    const m = pipe.model;
    m.reset();
    await m.prefill(Int32Array.from((await import('../../src/engine/tokenizer')).Tokenizer.qwen().encode('What is a savings account?'), (id) => id % 512));
    const want: number[] = [];
    for (let i = 0; i < 8; i++) {
      m.addToHidden(Float32Array.from(loraDeltaReference(pair, adapter.scaling, m.hidden())));
      await m.lmHead();
      const id = m.sample({ temperature: 0 });
      want.push(id);
      await m.decodeStep(id);
    }
    expect(run.summary.ids).toEqual(want);
  });

  it('builds the private figures from a result file, with provenance', () => {
    const d = {
      original: undefined as never, sota: [], peers: undefined as never,
      results: [{
        bench: 'private', backend: 'cuda', device: 'NVIDIA H200', commit: 'abc', date: '2026-12-02T00:00:00Z', command: 'npm run bench -- private', summary: {}, file: 'private-cuda-nvidia-h200.json',
        rows: [
          { table: 'generation', key_owner: 'server', placement: 'final-hidden', protocol: 'in-process', poly_n: 8192, rtt_ms: 0, tok_s: 400, ms_per_token: 2.5 },
          { table: 'generation', key_owner: 'client', placement: 'final-hidden', protocol: 'two-round', poly_n: 8192, rtt_ms: 0, tok_s: 60, ms_per_token: 16, forward_ms: 0.2, network_ms: 5, server_he_ms: 7, client_encrypt_ms: 1, client_decrypt_ms: 3, bytes_up_per_token: 3e5, bytes_down_per_token: 7e5, rounds_per_token: 2 },
          { table: 'generation', key_owner: 'client', placement: 'final-hidden', protocol: 'two-round', poly_n: 8192, rtt_ms: 10, tok_s: 30, ms_per_token: 33 },
          { table: 'precision', protocol: 'two-round', flood_bits: 40, poly_n: 8192, primes: 3, rel_error: 1e-6 },
          { table: 'precision', protocol: 'two-round', flood_bits: 0, poly_n: 8192, primes: 3, rel_error: 9e-7 },
        ],
      }],
    } as never;
    const rtt = privateRttFigure(d)!;
    expect(rtt.data.length).toBe(2);
    expect(rtt.note).toMatch(/NVIDIA H200|H200/);
    expect(JSON.stringify(rtt.data)).toMatch(/server key/);
    expect(privateStagesFigure(d)!.data.length).toBeGreaterThan(3);
    expect(privateBytesFigure(d)!.data.length).toBe(2);
    expect(privatePrecisionFigure(d)!.data[0].x).toEqual([40, 0]);
  });
});
