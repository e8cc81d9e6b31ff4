// Package stats provides the statistics of kdcal's report: Spearman's rank
// correlation, the nonparametric bootstrap with percentile intervals,
// permutation and sign-flip tests, and procedures over a Grid of
// measurements (units × replicates) that resample replicates jointly.
//
// It follows gonum's conventions: each function documents its formula and
// source; destinations come first and are allocated when nil; programmer
// errors (mismatched lengths, impossible sizes) panic with a "stats: "
// message; missing values are NaN, skipped where documented. It builds on
// gonum.org/v1/gonum/stat (Pearson correlation, mean, standard deviation,
// empirical quantiles) and stat/combin (permutation enumeration); what gonum
// does not offer (ranks, Spearman's ρ, bootstrap, permutation tests) is
// written here.
//
// # Replicates and joint resampling
//
// A Grid holds one measurement per (unit, replicate): in kdcal a unit is a
// teacher size (or a (setting, size) cell) and a replicate is a seed, one
// run of the whole pipeline. The joint procedures (JointSpearman,
// JointSpearmanDiff, JointMean) resample replicate indices with replacement
// and apply the same indices to every unit and every grid, so that the
// dependence between measurements of one replicate is kept (the "paired" or
// "block" bootstrap over replicates; Efron & Tibshirani 1993, ch. 6 and 8).
// A resample in which a unit loses all its values is dropped and not
// counted in Resamples.
//
// Random numbers come from a caller-supplied *rand.Rand; every function
// documents the order of its draws, so results are reproducible from the
// generator's seed.
package stats
