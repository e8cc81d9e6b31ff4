//go:build !amd64

package dgemm

// Kernel names the micro-kernel in use: "go" on this architecture.
var Kernel = "go"

var kernel = kernelGo
