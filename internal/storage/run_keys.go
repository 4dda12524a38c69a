package storage

import (
	"context"
	"fmt"

	"github.com/tutti-dev/tutti/internal/journey"
)

// RunKeySecret is the secret run key digests are made with (migration
// 00015 makes it; journey.RunKeyDigest says why a keyed hash). It is read
// once and kept: it never changes.
func (s *Store) RunKeySecret(ctx context.Context) ([]byte, error) {
	if p := s.runKeySecret.Load(); p != nil {
		return *p, nil
	}
	var secret []byte
	if err := s.pool.QueryRow(ctx, `SELECT secret FROM run_key_secret`).Scan(&secret); err != nil {
		return nil, fmt.Errorf("reading the run key secret: %w", err)
	}
	s.runKeySecret.Store(&secret)
	return secret, nil
}

// RunKeyDigest is the digest that names the run of one value of a
// journey's key property (journey.RunKeyDigest with this database's
// secret).
func (s *Store) RunKeyDigest(ctx context.Context, key, value string) (string, error) {
	secret, err := s.RunKeySecret(ctx)
	if err != nil {
		return "", err
	}
	return journey.RunKeyDigest(secret, key, value), nil
}
