package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdcal/kdcal/internal/config"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// fakeStage makes the steps of one plan stage by writing out.txt; its
// hooks make Prepare or Write fail, or Write cancel the run.
type fakeStage struct {
	name      string
	prepared  int
	committed int
	prepErr   error
	writeErr  error
	cancel    func() // called by Write, which then returns ctx.Err()
}

func (f *fakeStage) Name() string               { return f.name }
func (f *fakeStage) Command(s plan.Step) string { return "kdcal make " + s.Key }

func (f *fakeStage) Prepare(_ context.Context, _ *Env, s plan.Step) (Job, error) {
	f.prepared++
	if f.prepErr != nil {
		return nil, f.prepErr
	}
	return &fakeJob{f: f, s: s}, nil
}

type fakeJob struct {
	f *fakeStage
	s plan.Step
}

func (j *fakeJob) Manifest() runstore.Manifest {
	return runstore.Manifest{Key: j.s.Key, Kind: runstore.KindTeacher, ConfigHash: j.s.Hash, Inputs: j.s.Deps}
}

func (j *fakeJob) Write(ctx context.Context, st *runstore.Step) error {
	if err := os.WriteFile(st.Path("out.txt"), []byte(j.s.Key), 0o644); err != nil {
		return err
	}
	if j.f.cancel != nil {
		j.f.cancel()
		return ctx.Err()
	}
	return j.f.writeErr
}

func (j *fakeJob) Committed(*Env) { j.f.committed++ }

// testEnv is a fresh store with the default configuration's plan; the
// pipeline's teacher and calibration stages are fakes.
func testEnv(t *testing.T) (*Env, *Pipeline, *fakeStage, *fakeStage, *bytes.Buffer) {
	t.Helper()
	store, err := runstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cfg := config.Default()
	env := &Env{Cfg: cfg, Store: store, Plan: plan.Build(cfg), Log: slog.New(slog.NewTextHandler(&log, nil)),
		ConfigFlag: "q.yaml", ExperimentFlag: "exp"}
	teachers, calibration := &fakeStage{name: plan.StageTeachers}, &fakeStage{name: plan.StageCalibration}
	return env, New(nil, teachers, calibration), teachers, calibration, &log
}

// steps returns the plan's first teacher step and a calibration step of it.
func steps(env *Env) (teacher, calib plan.Step) {
	teacher = env.Plan.Filter(func(s plan.Step) bool { return s.Stage == plan.StageTeachers })[0]
	calib = env.Plan.Filter(func(s plan.Step) bool {
		return s.Stage == plan.StageCalibration && len(s.Deps) == 1 && s.Deps[0] == teacher.Key
	})[0]
	return teacher, calib
}

// TestRunStepPublishes: a step runs Prepare, then Write under its lock, and
// is published (done with its hash, Committed called once); a second run
// skips it, --force redoes it, and a damaged one is redone.
func TestRunStepPublishes(t *testing.T) {
	env, p, teachers, _, log := testEnv(t)
	teacher, _ := steps(env)
	if err := p.RunStep(context.Background(), env, teacher); err != nil {
		t.Fatal(err)
	}
	if !env.Store.Done(teacher.Key, teacher.Hash) || teachers.committed != 1 {
		t.Fatalf("not published (done %v, committed %d)", env.Store.Done(teacher.Key, teacher.Hash), teachers.committed)
	}
	for _, want := range []string{"msg=start step=" + teacher.Key, "msg=done step=" + teacher.Key + " seconds="} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	tests := []struct {
		name      string
		force     bool
		damage    bool
		wantPrep  int
		wantInLog string
	}{
		{"done: skipped", false, false, 1, "skip: already done (use --force to redo it)"},
		{"forced: redone", true, false, 2, ""},
		{"damaged: redone", false, true, 3, "redo: damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log.Reset()
			env.Force = tt.force
			if tt.damage {
				if err := os.WriteFile(env.Store.Path(teacher.Key, "out.txt"), []byte("changed"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.RunStep(context.Background(), env, teacher); err != nil {
				t.Fatal(err)
			}
			if teachers.prepared != tt.wantPrep || !strings.Contains(log.String(), tt.wantInLog) {
				t.Errorf("prepared %d times, want %d; log:\n%s", teachers.prepared, tt.wantPrep, log)
			}
		})
	}
}

// TestRequireDeps: a step whose dependency is missing, stale or damaged
// fails with exit-5 error naming the command that makes (or, with --force,
// redoes) it, with this invocation's --config and --experiment, before its
// stage is asked to do anything.
func TestRequireDeps(t *testing.T) {
	env, p, _, calibration, _ := testEnv(t)
	teacher, calib := steps(env)
	check := func(name, want string) {
		t.Helper()
		err := p.RunStep(context.Background(), env, calib)
		var me *runstore.MissingError
		if !errors.As(err, &me) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a MissingError with %q", name, err, want)
		}
		if calibration.prepared != 0 {
			t.Errorf("%s: the stage ran without its prerequisite", name)
		}
	}
	check("missing", "kdcal make "+teacher.Key+" --config q.yaml --experiment exp")

	stale := teacher
	stale.Hash = "0123456789abcdef"
	if err := p.RunStep(context.Background(), env, stale); err != nil {
		t.Fatal(err)
	}
	check("stale", "(stale: made with another configuration)")

	env.Force = true
	if err := p.RunStep(context.Background(), env, teacher); err != nil {
		t.Fatal(err)
	}
	env.Force = false
	os.Remove(env.Store.Path(teacher.Key, "out.txt"))
	check("damaged", "kdcal make "+teacher.Key+" --force --config q.yaml --experiment exp")
}

// TestPublishFailures: an error in Prepare publishes nothing and marks
// nothing failed; an error in Write marks the step failed; a cancelled
// Write releases the lock and keeps the work directory for a resume; a
// locked step is busy; a stage the pipeline lacks is not implemented.
func TestPublishFailures(t *testing.T) {
	env, p, teachers, _, _ := testEnv(t)
	teacher, _ := steps(env)
	ctx := context.Background()

	teachers.prepErr = errors.New("no dataset")
	if err := p.RunStep(ctx, env, teacher); err == nil || err.Error() != "no dataset" {
		t.Errorf("prepare error: %v", err)
	}
	if st, _ := env.Store.State(teacher.Key, teacher.Hash); st != runstore.StateMissing {
		t.Errorf("after a Prepare error the step is %s, want missing", st)
	}

	teachers.prepErr, teachers.writeErr = nil, errors.New("diverged")
	if err := p.RunStep(ctx, env, teacher); err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Errorf("write error: %v", err)
	}
	if st, _ := env.Store.State(teacher.Key, teacher.Hash); st != runstore.StateFailed {
		t.Errorf("after a Write error the step is %s, want failed", st)
	}

	teachers.writeErr = nil
	cctx, cancel := context.WithCancel(ctx)
	teachers.cancel = cancel
	if err := p.RunStep(cctx, env, teacher); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled write: %v", err)
	}
	if _, err := os.Stat(filepath.Join(env.Store.Dir(teacher.Key)+".partial", "out.txt")); err != nil {
		t.Errorf("the interrupted step's work directory is gone: %v", err)
	}
	teachers.cancel = nil

	held, err := env.Store.Begin(runstore.Manifest{Key: teacher.Key, Kind: runstore.KindTeacher, ConfigHash: teacher.Hash})
	if err != nil {
		t.Fatalf("the cancelled step's lock was not released: %v", err)
	}
	if err := p.RunStep(ctx, env, teacher); !errors.Is(err, runstore.ErrBusy) {
		t.Errorf("locked step: %v, want ErrBusy", err)
	}
	held.Release()

	students := env.Plan.Filter(func(s plan.Step) bool { return s.Stage == plan.StageStudents && len(s.Deps) == 0 })[0]
	var ny *NotYetError
	if err := p.RunStep(ctx, env, students); !errors.As(err, &ny) {
		t.Errorf("a stage outside the pipeline: %v, want NotYetError", err)
	}
}

// TestShared loads a value once per Env.
func TestShared(t *testing.T) {
	env := &Env{}
	n := 0
	load := func() (any, error) { n++; return n, nil }
	for range 3 {
		if v, err := env.Shared("k", load); err != nil || v != 1 {
			t.Fatalf("Shared = %v, %v", v, err)
		}
	}
	if _, err := env.Shared("bad", func() (any, error) { return nil, fmt.Errorf("boom") }); err == nil {
		t.Error("an error is not returned")
	}
	if v, _ := env.Shared("bad", func() (any, error) { return 2, nil }); v != 2 {
		t.Error("a failed load is kept")
	}
}
