package report

// Test fixtures: a small, complete experiment store generated from a seeded
// RNG with a built-in positive teacher-size effect, and a partial variant.
// These are NOT results of any training run; they exist only to test the
// report.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/metrics"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
	"github.com/kdcal/kdcal/internal/spec"
)

var update = flag.Bool("update", false, "rewrite golden files and the fixture experiment under testdata/")

const (
	fixtureConfig = "testdata/fixture/config.yaml"
	fixtureDir    = "testdata/fixture/experiment"
	fixtureInputs = 784 // Fashion-MNIST image size, for parameter counts
	fixtureCls    = 10
	fixtureTestN  = 10000
	fixtureBins   = 15
)

// loadFixtureConfig loads the fixture's configuration.
func loadFixtureConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Load(config.Source{File: fixtureConfig})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// mlpParams counts the weights and biases of an MLP in → hidden… → out.
func mlpParams(in int, hidden []int, out int) int {
	n, prev := 0, in
	for _, h := range append(append([]int(nil), hidden...), out) {
		n += prev*h + h
		prev = h
	}
	return n
}

// fixtureGen writes the fixture experiment; every random draw comes from one
// PCG stream in a fixed order, so the output is byte-for-byte reproducible.
type fixtureGen struct {
	cfg  *config.Config
	root string
	rng  *rand.Rand
	t    testing.TB
}

func (g *fixtureGen) norm(sd float64) float64 { return g.rng.NormFloat64() * sd }

var fixtureTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func (g *fixtureGen) manifest(key, kind, hash string, seed int, inputs ...string) {
	s := seed
	m := runstore.Manifest{Key: key, Kind: kind, Status: runstore.StatusDone, ConfigHash: hash, Inputs: inputs, Seed: &s,
		Version: "fixture", GoVersion: "fixture", Backend: "pure-go", Command: []string{"fixture_test.go"}, Host: "fixture",
		Started: fixtureTime, Finished: &fixtureTime}
	g.write(key, runstore.ManifestFile, m)
}

func (g *fixtureGen) write(key, name string, v any) {
	if err := atomicfile.WriteJSON(filepath.Join(g.root, key, name), v); err != nil {
		g.t.Fatal(err)
	}
}

// bins draws a reliability diagram: counts ∝ exp(k·m) over the bins above
// chance (1/C), confidence ≈ bin centre, accuracy = confidence − gap ± noise.
func (g *fixtureGen) bins(k, gap float64) []metrics.Bin {
	out := make([]metrics.Bin, fixtureBins)
	var w []float64
	var total float64
	for b := range out {
		lo, hi := float64(b)/fixtureBins, float64(b+1)/fixtureBins
		m := (lo + hi) / 2
		out[b].Lo, out[b].Hi = lo, hi
		wb := 0.0
		if hi > 1.0/fixtureCls {
			wb = math.Exp(k * m)
		}
		w = append(w, wb)
		total += wb
	}
	left := fixtureTestN
	for b := range out {
		c := int(math.Round(fixtureTestN * w[b] / total))
		if b == fixtureBins-1 {
			c = left
		}
		c = min(c, left)
		left -= c
		out[b].Count = c
		if c == 0 {
			continue
		}
		lo, hi := out[b].Lo, out[b].Hi
		conf := math.Max(lo, 1.0/fixtureCls) + (hi-math.Max(lo, 1.0/fixtureCls))*(0.45+0.1*g.rng.Float64())
		acc := conf - gap*conf + g.norm(0.01)
		out[b].Confidence = round4(conf)
		out[b].Accuracy = round4(math.Min(1, math.Max(0, acc)))
	}
	return out
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

func binAccuracy(bins []metrics.Bin) float64 {
	var s float64
	var n int
	for _, b := range bins {
		s += b.Accuracy * float64(b.Count)
		n += b.Count
	}
	return s / float64(n)
}

func (g *fixtureGen) summary(acc, nll, ece float64) metrics.Summary {
	return metrics.Summary{N: fixtureTestN, Accuracy: round4(acc), NLL: round4(nll), Brier: round4(2 * (1 - acc) * 0.8),
		ECE: round4(ece), MCE: round4(3 * ece), ECEEM: round4(ece * 0.9), CWECE: round4(ece / 4), Bins: fixtureBins}
}

// generate writes the complete fixture experiment into root.
func generateFixture(t testing.TB, cfg *config.Config, root string) {
	g := &fixtureGen{cfg: cfg, root: root, rng: rand.New(rand.NewPCG(2025, 6)), t: t}
	sizes := cfg.Teacher.Sizes
	params := map[string]int{}
	for _, s := range sizes {
		spec, _ := cfg.Teacher.Spec(s)
		params[s] = mlpParams(fixtureInputs, spec["hidden"].([]int), fixtureCls)
	}
	level := func(s string) float64 { return math.Log10(float64(params[s]) / float64(params[sizes[0]])) }
	temps := map[string]map[int]float64{}
	for _, size := range sizes {
		temps[size] = map[int]float64{}
		for _, seed := range cfg.Seeds {
			L := level(size)
			key := runstore.TeacherKey(size, seed)
			before := g.bins(8+4*L, 0.02+0.015*L)
			after := g.bins(6+2*L, 0)
			acc := binAccuracy(before)
			eceB := metrics.ECEFromBins(before, fixtureTestN)
			eceA := metrics.ECEFromBins(after, fixtureTestN)
			nllB := 0.42 + 0.06*L + g.norm(0.01)
			T := 1.12 + 0.22*L + g.norm(0.03)
			spec, _ := cfg.Teacher.Spec(size)
			ts := runstore.TeacherSummary{Size: size, Seed: seed, Family: cfg.Teacher.Family, Spec: typedSpec(spec), Params: params[size],
				Epochs: cfg.Teacher.Train.Epochs, WallSeconds: round4(10 * math.Pow(10, L)),
				Val: g.summary(acc+g.norm(0.003), nllB, eceB), Test: g.summary(acc, nllB, eceB)}
			g.write(key, runstore.SummaryFile, ts)
			g.manifest(key, runstore.KindTeacher, plan.TeacherHash(cfg, size, seed), seed)

			ckey := runstore.CalibrationKey("temp", size, seed)
			split := runstore.SplitResult{Before: ts.Test, After: g.summary(acc, nllB-0.05-0.03*L, eceA),
				ReliabilityBefore: before, ReliabilityAfter: after}
			cr := runstore.CalibrationResult{Method: "temp", Params: json.RawMessage(fmt.Sprintf(`{"temperature": %v}`, round4(T))),
				Fit: runstore.CalibrationFit{Iterations: 7}, Bins: fixtureBins, Val: split, Test: &split}
			g.write(ckey, runstore.CalibResultFile, cr)
			g.manifest(ckey, runstore.KindCalibration, plan.CalibrationHash(cfg, "temp", size, seed), seed, key)
			temps[size][seed] = round4(T)
		}
	}
	studentParams := mlpParams(fixtureInputs, cfg.Student.Model["hidden"].([]int), fixtureCls)
	seedEffect := map[int]float64{}
	for _, seed := range cfg.Seeds {
		seedEffect[seed] = g.norm(0.003)
	}
	student := func(key, hash string, seed int, s runstore.StudentSummary, acc, ece float64, inputs ...string) {
		s.Seed, s.CEWeight, s.Params, s.WallSeconds = seed, cfg.KD.CEWeight, studentParams, 5
		s.Val = g.summary(acc+g.norm(0.002), 0.45+3*(0.85-acc), ece)
		s.Test = g.summary(acc, 0.45+3*(0.85-acc), ece)
		g.write(key, runstore.SummaryFile, s)
		g.manifest(key, runstore.KindStudent, hash, seed, inputs...)
	}
	for _, set := range plan.Settings(cfg) {
		for _, size := range sizes {
			L := level(size)
			for _, seed := range cfg.Seeds {
				base := 0.835 + 0.006*L + 0.001*set.Tau + seedEffect[seed]
				tkey := runstore.TeacherKey(size, seed)
				for _, arm := range cfg.KD.Arms {
					s := runstore.StudentSummary{Arm: arm, TeacherSize: size, Setting: set.Name(), Tau: set.Tau,
						KDWeight: set.KDWeight, Epochs: set.Epochs}
					acc, ece := base+g.norm(0.002), 0.03-0.004*L+g.norm(0.002)
					inputs := []string{tkey}
					switch arm {
					case config.ArmRaw:
						s.CalibrationTemperature, s.EffectiveTemperature = 1, set.Tau
					case config.ArmCalibrated:
						T := temps[size][seed]
						s.Calibrator, s.CalibrationTemperature, s.EffectiveTemperature = "temp", T, round4(set.Tau*T)
						acc += 0.0015
						ece -= 0.004
						inputs = append(inputs, runstore.CalibrationKey("temp", size, seed))
					default:
						continue
					}
					key := runstore.StudentKey(set.Name(), arm, size, seed)
					student(key, plan.StudentHash(cfg, set, arm, size, seed), seed, s, acc, ece, inputs...)
				}
			}
		}
	}
	for _, e := range plan.ScratchEpochs(cfg) {
		for _, seed := range cfg.Seeds {
			s := runstore.StudentSummary{Arm: config.ArmScratch, Setting: scratchName(e), Epochs: e}
			student(runstore.ScratchKey(e, seed), plan.ScratchHash(cfg, e, seed), seed, s,
				0.828+seedEffect[seed]+g.norm(0.002), 0.04+g.norm(0.003))
		}
	}
}

// TestGoldenFixture checks that the checked-in fixture experiment is what the
// generator produces for the current configuration and step hashes (which
// change when internal/plan's hashing changes); -update rewrites it.
func TestGoldenFixture(t *testing.T) {
	cfg := loadFixtureConfig(t)
	if *update {
		if err := os.RemoveAll(fixtureDir); err != nil {
			t.Fatal(err)
		}
		generateFixture(t, cfg, fixtureDir)
		return
	}
	tmp := t.TempDir()
	generateFixture(t, cfg, tmp)
	want := readTree(t, tmp)
	got := readTree(t, fixtureDir)
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s/%s differs from the generator's output; run `go test ./internal/report -run TestGoldenFixture -update`", fixtureDir, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s/%s is not generated any more; run with -update", fixtureDir, name)
		}
	}
}

func readTree(t testing.TB, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		b, err := os.ReadFile(path)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyFixture copies the checked-in fixture experiment into a temporary
// store (the report writes into the store) and returns its root.
func copyFixture(t testing.TB) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "fixture")
	for name, b := range readTree(t, fixtureDir) {
		p := filepath.Join(dst, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// partialSteps are the changes makePartial applies, with the status the
// report must give each step.
var partialSteps = []struct{ key, status string }{
	{"teachers/medium/seed-1", StatusMissing},
	{"calibration/temp/xlarge/seed-2", StatusFailed},
	{"students/tau4-kdw0.9-ep4/calibrated/xlarge/seed-2", StatusMissing},
	{"students/tau4-kdw0.9-ep4/raw/xlarge/seed-2", StatusRunning},
	{"students/scratch-ep4/seed-1", StatusStale},
	{"students/tau2-kdw0.9-ep4/calibrated/tiny/seed-0", StatusInvalid},
}

// makePartial turns a copy of the fixture into an interrupted, partly stale
// study: a deleted teacher, a failed calibration, a missing and an
// interrupted student, a stale scratch student and an unreadable summary.
func makePartial(t testing.TB, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	dir := func(key string) string { return filepath.Join(root, filepath.FromSlash(key)) }
	must(os.RemoveAll(dir(partialSteps[0].key)))
	// failed: the work directory holds a manifest with status failed.
	fail := dir(partialSteps[1].key)
	must(os.Rename(fail, fail+".partial"))
	var m runstore.Manifest
	must(atomicfile.ReadJSON(filepath.Join(fail+".partial", runstore.ManifestFile), &m))
	m.Status, m.Error = runstore.StatusFailed, "temperature fit did not converge"
	must(atomicfile.WriteJSON(filepath.Join(fail+".partial", runstore.ManifestFile), m))
	must(os.RemoveAll(dir(partialSteps[2].key)))
	run := dir(partialSteps[3].key)
	must(os.Rename(run, run+".partial"))
	must(atomicfile.ReadJSON(filepath.Join(run+".partial", runstore.ManifestFile), &m))
	m.Status, m.Error = runstore.StatusRunning, ""
	must(atomicfile.WriteJSON(filepath.Join(run+".partial", runstore.ManifestFile), m))
	stale := filepath.Join(dir(partialSteps[4].key), runstore.ManifestFile)
	must(atomicfile.ReadJSON(stale, &m))
	m.ConfigHash = "0123456789abcdef"
	must(atomicfile.WriteJSON(stale, m))
	must(os.WriteFile(filepath.Join(dir(partialSteps[5].key), runstore.SummaryFile), []byte("{\"arm\": "), 0o644))
}

// typedSpec is the mlp family's spec.HashKey, as the teacher stage writes it
// into summary.json.
func typedSpec(m config.ModelSpec) any {
	f, err := spec.LookupFamily("mlp")
	if err != nil {
		panic(err)
	}
	return f.HashKey(m)
}
