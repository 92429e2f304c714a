// Package layers holds the test that keeps the module's import graph to the
// layer table in README.md: each row names a package and the packages of
// this module it may import. It has no code of its own.
package layers
