// Command kdcal runs knowledge-distillation calibration studies.
// See internal/cli for the commands and internal/stage for the pipeline's
// stages, which main wires in: internal/cli imports no training code.
package main

import (
	"os"

	"github.com/kdcal/kdcal/internal/cli"
	"github.com/kdcal/kdcal/internal/stage"
)

func main() { os.Exit(cli.Main(os.Args[1:], stage.All())) }
