// Command kdcal runs knowledge-distillation calibration studies.
// See internal/cli for the commands.
package main

import (
	"os"

	"github.com/kdcal/kdcal/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
