package daemon

import (
	"context"

	"github.com/sirupsen/logrus"

	"segfs/mountopts"
	"segfs/segments"
	"segfs/tier"
)

// openTier opens the object store, if any, and proves it usable before anything is mounted.
func openTier(cfg mountopts.Config, log logrus.FieldLogger) (*tier.Store, error) {
	if !cfg.Tier.Enabled() {
		return nil, nil
	}
	bucket, prefix, err := tier.ParseURL(cfg.Tier.URL)
	if err != nil {
		return nil, err
	}
	store, err := tier.Open(context.Background(), tier.Config{
		Bucket: bucket, Prefix: prefix,
		Endpoint: cfg.Tier.Endpoint, Region: cfg.Tier.Region, PathStyle: cfg.Tier.PathStyleSetting(),
		Concurrency: 2, Timeout: cfg.Tier.Timeout,
		CacheDir: segments.TierCacheDir(cfg.DataDir), CacheSize: cfg.Tier.Cache,
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	log.WithFields(logrus.Fields{"tier": store.URL(), "endpoint": cfg.Tier.Endpoint}).Info("object store reachable")
	return store, nil
}
