package runstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gofrs/flock"

	"github.com/kdcal/kdcal/internal/atomicfile"
	"github.com/kdcal/kdcal/internal/version"
)

// Step statuses recorded in a manifest.
const (
	StatusRunning = "running"
	StatusDone    = "done"
	StatusFailed  = "failed"
)

// Step kinds.
const (
	KindTeacher     = "teacher"
	KindCalibration = "calibration"
	KindStudent     = "student"
	KindReport      = "report"
)

// Manifest records what a step is, what it depended on and how it ran.
type Manifest struct {
	Key        string         `json:"key"`                    // relative step directory, e.g. teachers/large/seed-0
	Kind       string         `json:"kind"`                   // teacher | calibration | student | report
	Status     string         `json:"status"`                 // running | done | failed
	ConfigHash string         `json:"config_hash"`            // hash of exactly the configuration the step depends on
	Inputs     []string       `json:"inputs,omitempty"`       // keys of the steps whose outputs it read
	Seed       *int           `json:"seed,omitempty"`         // training seed, when the step has one
	Params     map[string]any `json:"params,omitempty"`       // step-specific resolved parameters (e.g. the KD formula)
	Version    string         `json:"kdcal_version"`          // kdcal version
	Revision   string         `json:"git_revision,omitempty"` // git revision of the build, or "unknown"
	GoVersion  string         `json:"go_version"`             // Go toolchain of the build
	Backend    string         `json:"backend"`                // BLAS backend: pure-go | openblas
	GEMM       string         `json:"gemm,omitempty"`         // GEMM kernel: avx2-fma-6x16 | gonum | openblas
	Command    []string       `json:"command"`                // command line
	Host       string         `json:"host"`                   // machine that ran it
	PID        int            `json:"pid"`                    // process that ran it
	Started    time.Time      `json:"started"`                // start time
	Finished   *time.Time     `json:"finished,omitempty"`     // end time (done or failed)
	Error      string         `json:"error,omitempty"`        // why it failed
	// Outputs lists every file the step published (all but manifest.json)
	// with its size and SHA-256, recorded by Commit; State checks them.
	// Steps finished before kdcal recorded outputs have none.
	Outputs []Output `json:"outputs,omitempty"`

	RevSource string `json:"git_revision_source,omitempty"` // where git_revision came from, or why it is "unknown"
}

// Store is one experiment directory. Open checks and creates it for
// writing; a Store{Root: dir} literal only reads (State, Manifest, Path).
type Store struct {
	Root string
	// Verify makes State and Done check the SHA-256 of every output of a
	// finished step, not only that each file exists with its recorded size.
	Verify bool
	// output marks a store that OpenOutput made of a user's directory (the
	// parent of `report --out DIR`): a step's lock file is removed when the
	// step is released, so nothing of kdcal's is left next to DIR.
	output bool
}

// TeacherKey names the step of one (size, seed) teacher.
func TeacherKey(size string, seed int) string {
	return filepath.Join("teachers", size, seedDir(seed))
}

// CalibrationKey names the step that fits one calibrator on one teacher.
func CalibrationKey(method, size string, seed int) string {
	return filepath.Join("calibration", method, size, seedDir(seed))
}

// StudentKey names a distilled student step (arm raw or calibrated).
func StudentKey(setting, arm, size string, seed int) string {
	return filepath.Join("students", setting, arm, size, seedDir(seed))
}

// ScratchKey names the scratch-student step for a number of epochs.
func ScratchKey(epochs, seed int) string {
	return filepath.Join("students", "scratch-ep"+strconv.Itoa(epochs), seedDir(seed))
}

// ReportKey names the report step.
const ReportKey = "report"

// SettingName names a KD combination, e.g. "tau4-kdw0.9-ep20", or
// "kdw0.9-ep20" for a loss without a temperature (tau 0).
func SettingName(tau, kdWeight float64, epochs int) string {
	n := fmt.Sprintf("kdw%s-ep%d", strconv.FormatFloat(kdWeight, 'g', -1, 64), epochs)
	if tau == 0 { // a loss without a temperature
		return n
	}
	return "tau" + strconv.FormatFloat(tau, 'g', -1, 64) + "-" + n
}

func seedDir(seed int) string { return "seed-" + strconv.Itoa(seed) }

// Dir returns the final directory of a step.
func (s *Store) Dir(key string) string { return filepath.Join(s.Root, key) }

// Path returns a file inside a finished step.
func (s *Store) Path(key, name string) string { return filepath.Join(s.Root, key, name) }

// Manifest reads the manifest of a finished step; ok is false when the step
// has not finished (or its manifest is unreadable).
func (s *Store) Manifest(key string) (m Manifest, ok bool) {
	if err := atomicfile.ReadJSON(s.Path(key, "manifest.json"), &m); err != nil {
		return Manifest{}, false
	}
	return m, m.Status == StatusDone
}

// Done reports whether a step has finished with the given config hash
// (any hash when hash is "") and its outputs are intact (sizes, and
// SHA-256 when s.Verify).
func (s *Store) Done(key, hash string) bool {
	return s.Inspect(key, hash, s.Verify).State == StateDone
}

// MissingError says a step that another one needs has not been run, or
// cannot be used (Reason says why, e.g. it is damaged).
type MissingError struct {
	Key    string // the missing step
	Hint   string // the command that produces it
	Reason string // set when the step exists but cannot be used, e.g. "damaged: logits_val.npy is missing"
}

func (e *MissingError) Error() string {
	if e.Reason != "" {
		msg := e.Key + " is " + e.Reason
		if e.Hint != "" {
			msg += "; run `" + e.Hint + "` to redo it"
		}
		return msg
	}
	msg := "missing " + e.Key
	if e.Hint != "" {
		msg += "; run `" + e.Hint + "` first"
	}
	return msg
}

// ErrBusy is returned by Begin when another process holds the step's lock.
var ErrBusy = errors.New("step is being run by another process")

// Step is a step being run: outputs go to Work() until Commit.
type Step struct {
	store *Store
	lock  *flock.Flock
	m     Manifest
	dir   string
	work  string
}

// Begin locks a step and prepares its work directory. A work directory left
// by an interrupted run with the same ConfigHash is kept (so the step can
// resume from its checkpoints); one with another hash is wiped. The
// manifest's provenance fields are filled in here.
//
// Begin never prepares to replace what kdcal did not write: the step's
// directory and its work directory must each be absent, empty, or hold a
// manifest.json of the same kind; anything else is a *ForeignError.
func (s *Store) Begin(m Manifest) (*Step, error) {
	dir := s.Dir(m.Key)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	lk := flock.New(dir + ".lock")
	ok, err := lk.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w", m.Key, ErrBusy)
	}
	st := &Step{store: s, lock: lk, dir: dir, work: dir + ".partial"}
	for _, d := range []string{st.dir, st.work} {
		if ferr := checkReplaceable(d, m.Kind); ferr != nil {
			st.Release()
			return nil, ferr
		}
	}
	var old Manifest
	if atomicfile.ReadJSON(filepath.Join(st.work, "manifest.json"), &old) == nil && old.ConfigHash != m.ConfigHash {
		if err := os.RemoveAll(st.work); err != nil {
			st.Release()
			return nil, err
		}
	}
	if err := os.MkdirAll(st.work, 0o755); err != nil {
		st.Release()
		return nil, err
	}
	fillProvenance(&m)
	m.Status = StatusRunning
	st.m = m
	if err := st.writeManifest(); err != nil {
		st.Release()
		return nil, err
	}
	return st, nil
}

func fillProvenance(m *Manifest) {
	v := version.Get()
	m.Version, m.Revision, m.GoVersion, m.Backend = v.Version, v.Revision, v.GoVersion, v.Backend
	m.RevSource, m.GEMM = v.RevisionSource, v.GEMM
	m.Command = os.Args
	m.Host, _ = os.Hostname()
	m.PID = os.Getpid()
	m.Started = time.Now().UTC()
}

// Work returns the directory the running step writes into.
func (st *Step) Work() string { return st.work }

// Path returns a file inside the work directory.
func (st *Step) Path(name string) string { return filepath.Join(st.work, name) }

// Key returns the step's key.
func (st *Step) Key() string { return st.m.Key }

// SetParam records a resolved parameter in the manifest.
func (st *Step) SetParam(name string, v any) {
	if st.m.Params == nil {
		st.m.Params = map[string]any{}
	}
	st.m.Params[name] = v
}

func (st *Step) writeManifest() error {
	return atomicfile.WriteJSON(filepath.Join(st.work, "manifest.json"), st.m)
}

// Commit records the size and SHA-256 of every file in the work directory
// in the manifest, marks the step done and publishes its outputs at once by
// renaming the work directory to the final one (replacing an older result
// of the same kind), then releases the lock.
func (st *Step) Commit() error {
	defer st.Release()
	outs, err := listOutputs(st.work)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	st.m.Status, st.m.Finished, st.m.Outputs = StatusDone, &now, outs
	if err := st.writeManifest(); err != nil {
		return err
	}
	var old string
	if _, err := os.Stat(st.dir); err == nil {
		old = fmt.Sprintf("%s.old-%d", st.dir, now.UnixNano())
		if err := os.Rename(st.dir, old); err != nil {
			return fmt.Errorf("replace %s: %w", st.dir, err)
		}
	}
	if err := os.Rename(st.work, st.dir); err != nil {
		return fmt.Errorf("publish %s: %w", st.dir, err)
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}

// Fail records err in the work directory's manifest (nothing is published)
// and releases the lock. It returns err.
func (st *Step) Fail(err error) error {
	defer st.Release()
	now := time.Now().UTC()
	st.m.Status, st.m.Finished, st.m.Error = StatusFailed, &now, err.Error()
	if werr := st.writeManifest(); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

// Release unlocks the step without changing its state (e.g. when interrupted;
// the work directory stays for a later resume).
func (st *Step) Release() {
	if st.lock != nil {
		if st.store.output {
			// Removed while still held: a process that opened the same
			// path meanwhile locks the unlinked file, and since the
			// published directory is renamed into place atomically the
			// worst outcome of such a race is two reports written in turn.
			os.Remove(st.lock.Path())
		}
		st.lock.Unlock()
		st.lock.Close()
		st.lock = nil
	}
}

// Hash returns a short, stable hash of v's JSON encoding (map keys sorted by
// encoding/json), used to key steps by the configuration they depend on.
func Hash(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("runstore: hash of unencodable value: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// State is what the store holds for a step, judged against the hash the
// current configuration expects.
type State string

// States of a step.
const (
	StateDone    State = "done"    // finished with the expected hash, outputs intact
	StateDamaged State = "damaged" // finished with the expected hash, but an output is missing or changed
	StateStale   State = "stale"   // finished under another configuration
	StateInvalid State = "invalid" // the directory exists but its manifest is missing, unreadable or not done
	StateFailed  State = "failed"  // its last run failed (the work directory's manifest says so)
	StatePartial State = "partial" // started, not finished: running now, or interrupted (a rerun resumes it)
	StateMissing State = "missing" // never started
)

// State classifies a step and says why for every state but done and
// missing. Outputs are checked by size, and by SHA-256 when s.Verify.
func (s *Store) State(key, hash string) (State, string) {
	in := s.Inspect(key, hash, s.Verify)
	return in.State, in.Reason
}

// Inspection is what the store holds for a step.
type Inspection struct {
	State  State
	Reason string // why, for every state but done and missing
	// Unverified marks a done step that finished before kdcal recorded its
	// outputs: there is nothing to check them against.
	Unverified bool
}

// Inspect classifies a step against the hash the configuration expects
// (any hash when hash is ""). A finished step's outputs are checked against
// its manifest: each file must exist with its recorded size and, when full,
// its SHA-256; a mismatch is StateDamaged. Inspect only reads.
func (s *Store) Inspect(key, hash string, full bool) Inspection {
	if m, ok := s.Manifest(key); ok {
		if hash != "" && m.ConfigHash != hash {
			return Inspection{State: StateStale, Reason: fmt.Sprintf("finished with config_hash %s, the configuration expects %s: it was run with other settings; rerun it (kdcal run)", m.ConfigHash, hash)}
		}
		if len(m.Outputs) == 0 {
			return Inspection{State: StateDone, Unverified: true}
		}
		if why := checkOutputs(s.Dir(key), m.Outputs, full); why != "" {
			return Inspection{State: StateDamaged, Reason: why}
		}
		return Inspection{State: StateDone}
	}
	state, reason := s.unfinished(key)
	return Inspection{State: state, Reason: reason}
}

// unfinished classifies a step without a finished manifest.
func (s *Store) unfinished(key string) (State, string) {
	if _, err := os.Stat(s.Dir(key)); err == nil {
		return StateInvalid, "the directory exists but its manifest.json is missing, unreadable or not done: kdcal did not publish it " +
			"so and will not replace it; move it away to rerun the step"
	}
	var pm Manifest
	err := atomicfile.ReadJSON(filepath.Join(s.Dir(key)+".partial", ManifestFile), &pm)
	switch {
	case err == nil && pm.Status == StatusFailed:
		return StateFailed, "last run failed: " + pm.Error
	case err == nil:
		return StatePartial, fmt.Sprintf("started %s on %s (pid %d) and not finished: still running, or interrupted (a rerun resumes it)",
			pm.Started.Format(time.RFC3339), pm.Host, pm.PID)
	case errors.Is(err, os.ErrNotExist):
		return StateMissing, "not run yet"
	default:
		return StatePartial, "unfinished work directory: " + err.Error()
	}
}
