// Package doclinks holds no code: its test checks the project's Markdown
// documents (README.md, docs/*.md and the package READMEs) for relative
// links whose target file, or whose #anchor in a Markdown target, does not
// exist, and for links that leave the repository. It runs with the other
// tests (make test), so a moved or renamed file breaks the build, not a
// reader's click.
package doclinks
