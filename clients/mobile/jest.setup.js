// Native modules have no native side under Jest: their own packages ship the mocks.
jest.mock('@react-native-async-storage/async-storage', () => require('@react-native-async-storage/async-storage/jest/async-storage-mock'));
jest.mock('react-native-keyboard-controller', () => require('react-native-keyboard-controller/jest'));
require('react-native-gesture-handler/jestSetup');
jest.mock('react-native-reanimated', () => require('react-native-reanimated/mock'));
jest.mock('react-native-safe-area-context', () => require('react-native-safe-area-context/jest/mock').default);

// The file picker, the cache and the share sheet: tests say what the picker answers and check what was shared.
jest.mock('expo-document-picker', () => ({ getDocumentAsync: jest.fn(async () => ({ canceled: true, assets: null })) }));
jest.mock('expo-sharing', () => ({ isAvailableAsync: jest.fn(async () => true), shareAsync: jest.fn(async () => undefined) }));
jest.mock('expo-file-system', () => {
  /** Files written to the fake cache: uri → base64 content. */
  const written = new Map();
  class File {
    constructor(...parts) {
      this.uri = parts.join('/');
    }
    get exists() {
      return written.has(this.uri);
    }
    create() {
      written.set(this.uri, '');
    }
    write(content) {
      written.set(this.uri, content);
    }
  }
  return { File, Paths: { cache: 'file:///cache' }, __written: written };
});
