package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdcal/kdcal/internal/config"
)

// NewCmdConfig builds `kdcal config show|keys`.
func NewCmdConfig(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the resolved configuration or list every key",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print the resolved configuration (defaults < file < environment < flags) as YAML",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cfg, err := g.LoadConfig()
			if err != nil {
				return err
			}
			b, err := ResolvedYAML(cfg)
			if err != nil {
				return err
			}
			_, err = g.Out.Write(b)
			return err
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "keys",
		Short: "List every configuration key with its environment variable and its comment in default.yaml",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			for _, k := range config.LeafKeys() {
				line := fmt.Sprintf("%-36s %-40s %s", k, config.EnvName(k), config.KeyComment(k))
				fmt.Fprintln(g.Out, strings.TrimRight(line, " "))
			}
			return nil
		},
	})
	return cmd
}
