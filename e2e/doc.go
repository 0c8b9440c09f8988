// Package e2e holds the end-to-end tests: they build the real cutover
// binary with go build and drive it as a user would, in tmux (send-keys,
// capture-pane) for the terminal UI, against the throwaway server of
// `cutover demo`. It has no code outside its tests.
package e2e
