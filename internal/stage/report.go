package stage

import (
	"context"
	"path/filepath"

	"github.com/kdcal/kdcal/internal/pipeline"
	"github.com/kdcal/kdcal/internal/plan"
	"github.com/kdcal/kdcal/internal/report"
)

// Report writes <experiment>/report/ from the store (report.Write). It is
// the last stage of `kdcal run`: every other step is done by then, so the
// report is complete and its hash is the plan's.
type Report struct{}

// Name implements pipeline.Stage.
func (Report) Name() string { return plan.StageReport }

// Command implements pipeline.Stage.
func (Report) Command(plan.Step) string { return "kdcal report" }

// Prepare writes and publishes the report itself: report.Write takes the
// step's lock and keys the report by the hashes of the steps it could use,
// which differs from the plan's when some are missing. It returns no Job.
func (Report) Prepare(ctx context.Context, env *pipeline.Env, s plan.Step) (pipeline.Job, error) {
	yml, err := pipeline.ResolvedYAML(env.Cfg)
	if err != nil {
		return nil, err
	}
	res, err := report.Write(ctx, env.Cfg, env.Store, report.Options{Log: env.Log, ConfigYAML: yml})
	if err != nil {
		return nil, err
	}
	if res.Hash != s.Hash {
		env.Log.Warn("report written from a partial study; `kdcal run` will write it again", "unused", len(res.Unused))
	}
	env.Log.Info("report", "readme", filepath.Join(res.Dir, "README.md"))
	return nil, nil
}
