/** The engine behind the page test: the real pipeline on the CPU ('tiny' preset, random weights). */
import type { GenerationService } from '../../src/pipeline/types';
import { openEngines } from '../../src/server/engines';
import type { SplitEngine } from '../../src/server/split-engine';

export async function pageService(): Promise<{ service: GenerationService; split?: SplitEngine; dispose: () => Promise<void> }> {
  const e = await openEngines({ backend: 'cpu', model: 'tiny' });
  return {
    service: e.service,
    split: e.split,
    dispose: async () => {
      await e.split?.dispose();
      await e.service.dispose();
    },
  };
}
