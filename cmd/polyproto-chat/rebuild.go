package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/polyproto-chat/server/projections"
)

// rebuild drops one read model and applies the whole event log to it again. It runs with the
// server stopped: the read-model database admits one process at a time.
func rebuild(ctx context.Context, cfg Config, log *slog.Logger, name string) error {
	store, _, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	views, err := projections.Open(filepath.Join(cfg.DataDir, "views"), log)
	if err != nil {
		return fmt.Errorf("read models (is the server still running?): %w", err)
	}
	defer views.Close()
	runner, err := projections.NewRunner(projections.Config{Events: store, DB: views, Projections: readModels(), Logger: log})
	if err != nil {
		return err
	}
	if err := runner.Rebuild(ctx, name); err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	log.Info("projection rebuilt", "projection", name)
	return nil
}
