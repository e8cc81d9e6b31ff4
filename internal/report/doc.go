// Package report turns an experiment store into the study's answer: tables
// (Markdown, CSV, LaTeX), statistics with uncertainty (stats.json), figures
// (gonum/plot, PNG, SVG and PDF) and an index README.md that renders on GitHub.
//
// It reads only the store (runstore summaries and calibration results) and
// never trains or imports gorgonia, so a report is regenerated in about a
// second. Partial studies are normal: Load classifies every step the
// configuration expects as done, missing, failed, running, stale (finished
// under another configuration, i.e. a different config hash) or invalid
// (unreadable summary); only done steps enter any number, and the README
// lists the rest.
//
// # Layout
//
// The report reads the plan (which steps a configuration expects, with
// which hashes) and the store (their summaries), and nothing below them:
//
//   - load.go: Load classifies every expected step and reads its summary (Study).
//   - analysis.go, grid.go: Analyze turns the Study into per-size rows and
//     statistics (Analysis), through internal/stats (Spearman, joint
//     bootstrap, permutation and sign-flip tests).
//   - conclusion.go: Conclude writes the answer's sentences from the numbers.
//   - tables.go, steps.go, statsdoc.go: the tables (rendered by
//     report/table), steps.csv and stats.json.
//   - figures.go: turns the Analysis into plain data for the builders of
//     report/figure (gonum/plot), which return errors.
//   - readme.go, report.go: README.md and Write, which publishes everything
//     as one step of the store.
//
// # The question and how it is tested
//
// "Does a bigger teacher make a better student, and does calibrating the
// teacher change the answer?" On small benchmarks the effect is of the size
// of seed-to-seed noise, so every claim comes with an interval and a test,
// and the conclusion is generated from them (Conclude), never fixed text.
//
//   - Unit of analysis: one point per teacher size, the mean over seeds of
//     each quantity (n = number of sizes). Teacher size is its parameter
//     count; Spearman's ρ (stats.Spearman) uses average ranks for ties.
//   - Bootstrap (stats.JointSpearman, stats.Bootstrap, stats.PercentileCI): seeds are resampled with
//     replacement jointly — the same seed indices for every size and arm —
//     because one seed is one replicate of the whole pipeline (student seed s
//     has the same initialisation and batch order in the raw, calibrated and
//     scratch arms, and distils teacher seed s). Each resample recomputes the
//     per-size means and the statistic; the interval is the percentile
//     interval (empirical quantiles, as gonum's stat.Empirical). Resamples
//     in which a size has no seed with data are dropped and counted.
//   - Permutation p-value (stats.PermutationSpearman): two-sided, the per-size
//     means are permuted against the sizes; exact enumeration when
//     n! ≤ report.permutations, otherwise Monte Carlo with (b+1)/(m+1). The
//     smallest attainable p is 2/n! (1/3 for 3 sizes), which the conclusion
//     states whenever the design cannot reach 0.05.
//   - Paired differences (calibrated − raw, KD − scratch): paired by seed;
//     per size the mean over seeds with its bootstrap interval, overall the
//     mean over sizes with a joint bootstrap interval and an exact sign-flip
//     test on the per-seed averages (stats.JointMean, stats.SignFlipTest).
//   - Δρ = ρ(size, calibrated) − ρ(size, raw) with a joint bootstrap
//     interval: does calibration change the size trend?
//   - Effective KD temperature τ·T against student accuracy over (setting,
//     size) cells, when the study sweeps KD settings.
//
// A claim is "supported" when its 95% interval excludes 0 and p < 0.05, "a
// trend without statistical support" when only the interval excludes 0, and
// "inconclusive" otherwise. A number that stats.json lacks (no interval with
// one seed, no ρ with fewer than 3 sizes) is called "not estimable with
// n = …" with the reason, never "the interval includes 0".
//
// Every statistic draws from its own PCG stream seeded by report.seed and a
// hash of the statistic's name, so the report is reproducible and adding a
// statistic does not change the others.
package report
