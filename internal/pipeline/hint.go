package pipeline

import (
	"fmt"
	"path/filepath"

	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/runstore"
)

// RequireDeps checks that every dependency of s is done with its current
// hash and intact — every output's size and SHA-256 as its manifest records
// (the step is about to read them) — returning a *runstore.MissingError
// naming the command that makes or redoes it.
func (p *Pipeline) RequireDeps(env *Env, s plan.Step) error {
	for _, d := range s.Deps {
		dep, ok := env.Plan.Get(d)
		if !ok {
			continue
		}
		in := env.Store.Inspect(d, dep.Hash, true)
		switch in.State {
		case runstore.StateDone:
			continue
		case runstore.StateStale:
			return &runstore.MissingError{Key: filepath.Join(env.Store.Root, d) + " (stale: made with another configuration)", Hint: p.Hint(env, dep)}
		case runstore.StateDamaged:
			return &runstore.MissingError{Key: filepath.Join(env.Store.Root, d), Reason: "damaged: " + in.Reason, Hint: p.RedoHint(env, dep)}
		}
		return &runstore.MissingError{Key: filepath.Join(env.Store.Root, d), Hint: p.Hint(env, dep)}
	}
	return nil
}

// Hint names the command that makes step s, with the --config and
// --experiment of this invocation so that it can be run as printed.
func (p *Pipeline) Hint(env *Env, s plan.Step) string {
	return p.command(s) + invocation(env)
}

// RedoHint names the command that redoes a finished step (a damaged one):
// its stage command with --force (the report is always rewritten).
func (p *Pipeline) RedoHint(env *Env, s plan.Step) string {
	if s.Stage == plan.StageReport {
		return p.Hint(env, s)
	}
	return p.command(s) + " --force" + invocation(env)
}

func (p *Pipeline) command(s plan.Step) string {
	if st, ok := p.Stage(s.Stage); ok {
		return st.Command(s)
	}
	return fmt.Sprintf("kdcal run --stage %s", s.Stage)
}

func invocation(env *Env) string {
	s := ""
	if f := env.ConfigFlag; f != "" {
		s += " --config " + f
	}
	if e := env.ExperimentFlag; e != "" {
		s += " --experiment " + e
	}
	return s
}
