// Package fusefs exposes a segments.Log as a FUSE filesystem (go-fuse v2 fs API).
//
// Namespace (docs/namespace.md is the user-facing version):
//
//	MNT/<topic>/                      a topic; mkdir creates it, rmdir deletes it with its data
//	MNT/<topic>/<p>/                  a partition; mkdir adds it, rmdir deletes it with its data
//	MNT/<topic>/<p>/<%020d base>.log  a sealed segment: 0444, exact size, unlink purges it
//	MNT/<topic>/<p>/current           the active segment: 0644, append-only, readable
//	MNT/<topic>/<p>/.stream           the partition by offset: 0444, never rotates, not listed
//	MNT/.stats                        metrics (Options.Stats): 0444, not listed
//
// Entries inside topics and partitions are interface files, as in cgroupfs: rmdir succeeds on a
// directory that lists them, and unlink of `current` succeeds without touching data, so `rm -r` works.
//
// `current` follows multilog: its st_ino is the backing file's, so after a rotation that st_ino
// shows as `<base>.log`. `current` has zero timeouts and each rotation invalidates its dentry
// (RotateNotifier). segments publishes a rotation in one step, so `current` always exists and never
// resolves to a segment a listing showed as sealed.
//
// `current` and `<base>.log` are distinct kernel inodes (same st_ino, other generation): one is
// direct-I/O, the other cached or passthrough, and the kernel never mixes the modes on one inode.
// After rmdir, a held `current` gets ENOENT for writes; its readers keep reading (openReaders).
//
// Append-only follows chattr +a: writing `current` needs O_APPEND, O_TRUNC gets EPERM, and each
// WRITE is one Partition.Append at the partition's end, whatever the offset. The kernel fits a
// write() of up to 1020 KiB into one WRITE whatever its alignment (256 pages, one partial) and
// splits larger ones without saying so. truncate, chmod, chown, explicit times, rename, link,
// symlink, mknod, create and setxattr/removexattr get EPERM; "now" times are accepted and ignored.
// setxattr is EPERM in every namespace because the kernel passes POSIX ACLs as plain xattrs.
// O_TMPFILE and fallocate get EOPNOTSUPP.
//
// docs/architecture.md places this package among the others.
package fusefs
