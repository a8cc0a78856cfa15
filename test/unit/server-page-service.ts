/** The engine behind the page test: the protocol doubles (the page's job is rendering). */
import type { GenerationService } from '../../src/pipeline/types';
import type { SplitEngine } from '../../src/server/split-engine';
import { FakeService, FakeSplit } from './server-fakes';

export async function pageService(): Promise<{ service: GenerationService; split?: SplitEngine; dispose: () => Promise<void> }> {
  return { service: new FakeService(5), split: new FakeSplit(), dispose: async () => undefined };
}
