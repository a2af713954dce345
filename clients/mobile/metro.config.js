// The protocol client is the workspace's own TypeScript source (clients/protocol,
// linked into node_modules by `file:`): Metro must watch it and resolve its
// imports from this app's node_modules.
const path = require('node:path');
const { getDefaultConfig } = require('expo/metro-config');

const config = getDefaultConfig(__dirname);
config.watchFolders = [path.resolve(__dirname, '../protocol')];
config.resolver.nodeModulesPaths = [path.resolve(__dirname, 'node_modules')];
module.exports = config;
