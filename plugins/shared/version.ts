/**
 * One version for every plugin of the toolkit, as Kong's bundled plugins share `kong_meta.version`.
 * Kong >= 3.0 refuses a plugin whose VERSION is not "x.y.z".
 */
export const VERSION = '0.1.0'
