package gemm

// FMAPeak exposes fmaPeak to the external benchmarks.
var FMAPeak = fmaPeak
