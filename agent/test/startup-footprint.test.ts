/**
 * The idle agent's memory budget (`npm run bench -- agent`, issue #4: <= 40 MB over a bare onnxruntime
 * process) depends on what loading the agent pulls in. sharp (libvips) and the sources are for running
 * pipelines; tuf-js is for the first metadata refresh. Loading them at start cost 10+ MB once already
 * (a config check imported the sources' index), so this pins it: importing the agent must not load them.
 */
const loaded: string[] = [];
jest.mock('sharp', () => {
  loaded.push('sharp');
  return {};
});
jest.mock('tuf-js', () => {
  loaded.push('tuf-js');
  return {};
});
jest.mock('../src/sources/camera-source', () => {
  loaded.push('camera-source');
  return {};
});
jest.mock('../src/sources/folder-source', () => {
  loaded.push('folder-source');
  return {};
});

it('loads neither sharp, tuf-js nor the sources when the agent module is imported', () => {
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loading is what is measured
    require('../src/agent');
  });
  expect(loaded).toEqual([]);
});

it('would notice: importing the sources index does load them', () => {
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loading is what is measured
    require('../src/sources');
  });
  expect(loaded).toEqual(expect.arrayContaining(['camera-source', 'folder-source']));
});
