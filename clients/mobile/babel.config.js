// babel-preset-expo adds the worklets (Reanimated) plugin by itself when it is installed.
module.exports = function config(api) {
  api.cache(true);
  return { presets: ['babel-preset-expo'] };
};
