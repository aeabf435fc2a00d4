//go:build !invariants && !race

package invariants

// Enabled is false: only the cheap per-account checks run.
const Enabled = false
