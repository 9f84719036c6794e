// Package fusefs exposes a segments.Log as a FUSE filesystem (go-fuse v2 fs API).
//
// Namespace (see docs/namespace.md for the user-facing version):
//
//	MNT/<topic>/                         a topic; mkdir creates it, rmdir deletes it with its data
//	MNT/<topic>/<p>/                     a partition; mkdir adds it, rmdir deletes it with its data
//	MNT/<topic>/<p>/<%020d base>.log     a sealed segment: 0444, exact size, unlink purges it
//	MNT/<topic>/<p>/current              the active segment: 0644, append-only, readable
//	MNT/<topic>/<p>/.stream              the partition by partition offset: 0444, never rotates, not listed
//	MNT/.stats                           the metrics exposition (Options.Stats): 0444, not listed
//
// The entries inside topics and partitions are interface files, as in cgroupfs: rmdir succeeds on a
// directory that lists them. unlink of `current` succeeds without touching any data (the name
// reappears at once), so that `rm -r MNT/T` unlinks every entry and then removes the directories.
//
// `current` follows multilog/svlogd: the active segment's st_ino is the backing file's inode, so after
// a rotation the same st_ino appears as `<base>.log` and `current` has a new one. `current` has zero
// entry and attr timeouts and on every rotation the kernel's entry for it is invalidated
// (RotateNotifier), so path walks find the new segment. Lookups and listings wait out the moment
// in which segments has sealed a segment but not yet created its successor, so `current` always
// exists and never resolves to a segment a listing already showed as sealed.
//
// The kernel inode behind `current` and the one behind `<base>.log` are distinct FUSE nodes (same
// st_ino, different generation): a handle of `current` is direct-I/O and appends to the partition,
// one of `<base>.log` is cached or passthrough, and the kernel never mixes the two I/O modes on one
// inode. After rmdir of its partition, a held `current` gets ENOENT for writes and closes cleanly;
// readers of it keep reading what the partition held (openReaders), as do readers of sealed segments.
//
// Append-only semantics are those of chattr +a: opening `current` for writing requires O_APPEND and
// refuses O_TRUNC (EPERM); every FUSE WRITE is one Partition.Append, at the end of the partition
// whatever offset the kernel passes. The kernel fits a write() of up to 1020 KiB into one WRITE
// whatever the buffer's alignment (at most 256 pages per request, one of them partial); it splits
// larger ones, and FUSE does not say which requests came from one write(). truncate, chmod, chown, explicit timestamps, rename, link,
// symlink, mknod, creating files and setxattr/removexattr get EPERM; "now" timestamps (touch) are
// accepted and change nothing, as on an append-only inode. setxattr is EPERM in every namespace: the
// kernel hands POSIX ACLs of a mount in the initial user namespace to the server as plain xattrs
// (in other user namespaces it refuses them itself with EOPNOTSUPP, since ACLs are not enabled).
// O_TMPFILE and fallocate get EOPNOTSUPP, as on filesystems without them.
//
// docs/architecture.md shows where this package sits among the others.
package fusefs
