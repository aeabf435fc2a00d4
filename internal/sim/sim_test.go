package sim_test

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/tpwallet/tpwallet/internal/sim"
)

var (
	seedFlag  = flag.Int64("sim.seed", -1, "run only this seed, logging every step")
	seedsFlag = flag.Int("sim.seeds", 0, "run this many seeds (default: the short run's)")
	stepsFlag = flag.Int("sim.steps", 0, "steps per seed (default: the short run's)")
	firstFlag = flag.Int64("sim.first", 1, "the first seed of a run of -sim.seeds seeds")
)

// The short run: enough seeds and steps to strike every fault kind, within a minute on two
// cores with -race.
const (
	seedsShort = 32
	stepsShort = 90
)

// TestSimulation runs the simulation for seeds 1..seedsShort (or -sim.first.. -sim.seeds),
// or only -sim.seed, logging every step. A failing seed is reported with the command that
// replays it.
func TestSimulation(t *testing.T) {
	steps := *stepsFlag
	if steps <= 0 {
		steps = stepsShort
	}
	if *seedFlag >= 0 {
		res, err := sim.Run(*seedFlag, sim.Config{Steps: steps, Logf: t.Logf})
		if err != nil {
			t.Fatalf("%v\nreplay: %s", err, replay(*seedFlag, steps))
		}
		t.Logf("seed %d: digest %x\n%s", res.Seed, res.Digest, res.Stats)
		return
	}
	seeds := *seedsFlag
	if seeds <= 0 {
		seeds = seedsShort
	}
	var total sim.Stats
	for seed := *firstFlag; seed < *firstFlag+int64(seeds); seed++ {
		t.Logf("seed %d ...", seed) // streamed with -v: names the seed if the process dies
		res, err := sim.Run(seed, sim.Config{Steps: steps})
		if err != nil {
			t.Fatalf("%v\nreplay: %s", err, replay(seed, steps))
		}
		t.Logf("seed %d: digest %x", seed, res.Digest)
		total.Add(res.Stats)
	}
	t.Logf("%d seeds from %d, %d steps each:\n%s", seeds, *firstFlag, steps, total)
	// A short run that struck no fault of some kind proves nothing about it.
	if *seedsFlag == 0 && *stepsFlag == 0 {
		for f := sim.Fault(1); f < sim.FaultKinds; f++ {
			if total.Faults[f] == 0 {
				t.Errorf("the short run struck no %s fault: raise seedsShort or stepsShort", f)
			}
		}
		for tr := sim.Tear(0); tr < sim.TearKinds; tr++ {
			if total.Tears[tr] == 0 {
				t.Errorf("the short run tore no unsynced tail as %s: raise seedsShort or stepsShort", tr)
			}
		}
		if total.FailStops == 0 || total.DoubtFound == 0 || total.DoubtGone == 0 {
			t.Errorf("the short run checked %d fail-stops, %d requests in doubt found and %d gone: want some of each",
				total.FailStops, total.DoubtFound, total.DoubtGone)
		}
	}
}

func replay(seed int64, steps int) string {
	return fmt.Sprintf("go test ./internal/sim -run 'TestSimulation$' -v -sim.seed=%d -sim.steps=%d", seed, steps)
}

// TestDeterminism runs seeds twice and compares the digests of the runs (every step, file
// operation, fault, torn tail, outcome, and the journal's head): a seed must replay exactly.
func TestDeterminism(t *testing.T) {
	for _, seed := range []int64{3, 7} {
		var trace [2][]string
		var res [2]*sim.Result
		for i := range res {
			var err error
			res[i], err = sim.Run(seed, sim.Config{Steps: 90, Logf: func(format string, args ...any) {
				trace[i] = append(trace[i], fmt.Sprintf(format, args...))
			}})
			if err != nil {
				t.Fatalf("%v\nreplay: %s", err, replay(seed, 90))
			}
		}
		if res[0].Digest != res[1].Digest || res[0].Head != res[1].Head {
			t.Errorf("seed %d: two runs differ: digests %x and %x, heads %d and %d\n%s", seed,
				res[0].Digest, res[1].Digest, res[0].Head.Seq, res[1].Head.Seq, firstDifference(trace[0], trace[1]))
		}
		if res[0].Stats.Crashes == 0 {
			t.Errorf("seed %d crashed no process in 90 steps: the comparison covers no recovery", seed)
		}
	}
}

func firstDifference(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			lo := max(0, i-5)
			return fmt.Sprintf("first difference at line %d:\n%s\n- %s\n+ %s", i,
				strings.Join(a[lo:i], "\n"), a[i], b[i])
		}
	}
	return fmt.Sprintf("one trace is a prefix of the other (%d and %d lines)", len(a), len(b))
}
