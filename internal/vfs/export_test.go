package vfs

// ChmodNoFollow is chmodNoFollow for the external tests, which share
// vfstest's file mode helpers (vfstest imports vfs, so tests inside
// package vfs cannot import it).
var ChmodNoFollow = chmodNoFollow
