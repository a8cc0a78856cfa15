import { describe, expect, it } from 'vitest';
import { openWsFloor } from '../../src/bench/ws-floor';

describe('bench ws floor (raw WebSocket round trip beside the private rows)', () => {
  it('carries the asked sizes both ways and times a round trip', async () => {
    const floor = await openWsFloor();
    try {
      const small = await floor.roundTripMs(1, 16, 10);
      const large = await floor.roundTripMs(300_000, 700_000, 10);
      expect(small).toBeGreaterThan(0);
      expect(Number.isFinite(large)).toBe(true);
      expect(large).toBeGreaterThan(0);
    } finally {
      await floor.close();
    }
  });
});
