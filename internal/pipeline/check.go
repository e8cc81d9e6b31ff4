package pipeline

import (
	"context"
	"errors"

	"github.com/kdcal/kdcal/internal/plan"
)

// Checker is a Stage that checks the inputs of its steps before any step of
// a run starts, so that a bad input stops the run before anything trains
// (the teachers stage of teacher.source external reads every external
// file). Prepare checks the same for the one step it prepares.
type Checker interface {
	Check(ctx context.Context, env *Env, steps []plan.Step) error
}

// Check runs the Check of every stage that has one on that stage's steps
// among steps (the steps a command is about to run, done ones left out).
func (p *Pipeline) Check(ctx context.Context, env *Env, steps []plan.Step) error {
	if p == nil {
		return nil
	}
	var errs []error
	for _, st := range p.stages {
		c, ok := st.(Checker)
		if !ok {
			continue
		}
		var mine []plan.Step
		for _, s := range steps {
			if s.Stage == st.Name() {
				mine = append(mine, s)
			}
		}
		if len(mine) == 0 {
			continue
		}
		if err := c.Check(ctx, env, mine); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
