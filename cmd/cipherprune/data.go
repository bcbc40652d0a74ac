package main

import (
	"context"
	"fmt"
	"io"

	"github.com/cipherprune/cipherprune/models/dataset"
)

// runData implements "cipherprune data": it fetches every corpus through the
// npm client, checks it against the pinned checksum and writes the splits.
func runData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("data", stderr)
	def, err := dataset.DefaultDir()
	if err != nil {
		return err
	}
	dir := fs.String("dir", def, "data directory (default $CIPHERPRUNE_DATA or the user cache dir)")
	only := fs.String("task", "", "prepare only this task (sentiment|spam)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tasks := dataset.Tasks
	if *only != "" {
		t, err := dataset.ParseTask(*only)
		if err != nil {
			return err
		}
		tasks = []dataset.Task{t}
	}
	for _, t := range tasks {
		fmt.Fprintf(stderr, "data: fetching %s (%s)\n", t, dataset.PackageOf(t).Spec)
		s, err := dataset.Prepare(ctx, *dir, t, dataset.NPMFetcher)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: train=%d validation=%d test=%d duplicates_dropped=%d dir=%s\n",
			t, s.Train, s.Validation, s.Test, s.Duplicates, *dir)
	}
	return nil
}
