//! A directory's names and attributes fetched in one master call when lookups scan it.
//!
//! After `drop_caches`, a remount, or the kernel's entry timeout, `stat` of each file in a
//! directory is a Lookup round trip (`ls -l`, `find`, `rsync`, a build checking
//! timestamps). When the lookups in one directory keep finding names, the next miss reads
//! a page of the directory with attributes instead (ReadDir plus), and further lookups
//! are answered from it for `min(entry_ttl, attr_ttl)`: no older than what the kernel's
//! own caches may show. Only names found are served; a name missing from a page is asked
//! of the master, so a file another mount just created is never hidden.
//!
//! Changes this mount makes keep the pages true: creates and unlinks edit them, and every
//! other change to an inode (attributes, data, xattrs, atime, links) marks the inode with
//! a sequence number so no page fetched before that change answers for it. A page whose
//! directory changed here while it was being fetched is not kept.

use kdss_proto::master as pb;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries asked for per page (the master's readdir batch).
pub const PAGE: u32 = 512;

/// Names kept across all pages before the cache starts over (it only ever saves calls).
const MAX_NAMES: usize = 64 * 1024;

/// Marks kept before the cache starts over.
const MAX_MARKS: usize = 64 * 1024;

/// Lookups found by the master in a directory within the ttl before its first page is read.
const FOUND_BEFORE_PAGE: u32 = 2;

/// Hits a partial page must have served before the next miss reads the page after it.
const HITS_BEFORE_NEXT_PAGE: u32 = 32;

/// See the module doc.
#[derive(Default)]
pub struct NameCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    pages: HashMap<u64, Page>,
    /// Lookups the master answered with a name, per directory: (count, first).
    found: HashMap<u64, (u32, Instant)>,
    /// The sequence number of each inode's last change here.
    marks: HashMap<u64, u64>,
    seq: u64,
    /// Pages whose fetch began before this sequence number are not kept.
    floor: u64,
    names: usize,
}

struct Page {
    fetched: Instant,
    /// Each name's attributes and the sequence number they are true at: an inode
    /// marked later does not answer.
    names: HashMap<String, (pb::Attr, u64)>,
    /// Cookie to read on from; None when the page ends the directory.
    next: Option<u64>,
    hits: u32,
}

/// What a lookup that missed should do.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// Ask the master for the name alone.
    Lookup,
    /// Read a page of the directory from this cookie (0: the start); `seq` goes to `store`.
    Page { cookie: u64, seq: u64 },
}

impl NameCache {
    /// The attributes of `name` in `parent` if a page fresher than `ttl` holds it and
    /// its inode has not changed here since.
    pub fn hit(&self, parent: u64, name: &str, ttl: Duration) -> Option<pb::Attr> {
        let mut g = self.lock();
        let Inner { pages, marks, .. } = &mut *g;
        let p = pages.get_mut(&parent)?;
        if p.fetched.elapsed() >= ttl {
            return None;
        }
        let (a, seq) = p.names.get(name)?;
        if marks.get(&a.ino).is_some_and(|m| m > seq) {
            return None;
        }
        p.hits += 1;
        Some(*a)
    }

    /// After a miss in `parent`: read a page when lookups there keep finding names.
    pub fn on_miss(&self, parent: u64, ttl: Duration) -> Miss {
        let g = self.lock();
        let seq = g.seq;
        if let Some(p) = g.pages.get(&parent).filter(|p| p.fetched.elapsed() < ttl) {
            return match p.next {
                Some(cookie) if p.hits >= HITS_BEFORE_NEXT_PAGE => Miss::Page { cookie, seq },
                _ => Miss::Lookup,
            };
        }
        match g.found.get(&parent) {
            Some((n, first)) if *n >= FOUND_BEFORE_PAGE && first.elapsed() < ttl => {
                Miss::Page { cookie: 0, seq }
            }
            _ => Miss::Lookup,
        }
    }

    /// The master found a name in `parent` (counts toward reading a page).
    pub fn found(&self, parent: u64, ttl: Duration) {
        let mut g = self.lock();
        let e = g.found.entry(parent).or_insert((0, Instant::now()));
        if e.1.elapsed() >= ttl {
            *e = (0, Instant::now());
        }
        e.0 += 1;
        if g.found.len() > MAX_MARKS {
            g.found.clear();
        }
    }

    /// Keeps a page of `parent` read from the master, fetched from sequence `seq` on.
    pub fn store(
        &self,
        parent: u64,
        seq: u64,
        entries: Vec<(String, pb::Attr)>,
        next: Option<u64>,
    ) {
        let mut g = self.lock();
        if seq < g.floor || g.marks.get(&parent).is_some_and(|m| *m > seq) {
            return; // Its names changed here during the fetch.
        }
        if g.names + entries.len() > MAX_NAMES {
            g.clear();
        }
        g.names += entries.len();
        let page = Page {
            fetched: Instant::now(),
            names: entries.into_iter().map(|(n, a)| (n, (a, seq))).collect(),
            next,
            hits: 0,
        };
        if let Some(old) = g.pages.insert(parent, page) {
            g.names -= old.names.len();
        }
        g.found.remove(&parent);
    }

    /// An inode changed here (after the master answered, or failed to).
    pub fn mark(&self, ino: u64) {
        let mut g = self.lock();
        if g.marks.len() >= MAX_MARKS {
            // Without the marks no page can be trusted.
            g.marks.clear();
            g.clear();
        }
        g.seq += 1;
        let seq = g.seq;
        g.marks.insert(ino, seq);
    }

    /// `name` was created (or linked) in `parent` here with attributes `attr`.
    pub fn added(&self, parent: u64, name: &str, attr: &pb::Attr) {
        self.mark(parent);
        // A link changed the inode's count: other names of it stop answering.
        self.mark(attr.ino);
        let mut g = self.lock();
        let seq = g.seq;
        if let Some(p) = g.pages.get_mut(&parent)
            && p.names.insert(name.to_string(), (*attr, seq)).is_none()
        {
            g.names += 1;
        }
    }

    /// `name` was removed from `parent` here (its inode's link count changed too).
    pub fn removed(&self, parent: u64, name: &str) {
        let gone = {
            let mut g = self.lock();
            let gone = g.pages.get_mut(&parent).and_then(|p| p.names.remove(name));
            if gone.is_some() {
                g.names -= 1;
            }
            gone
        };
        match gone {
            Some((a, _)) => self.mark(a.ino),
            // Its inode is unknown here: other pages may hold it under another name.
            None => self.forget_all(),
        }
        self.mark(parent);
    }

    /// A change whose effects on names are not all known here (rename, rmdir).
    pub fn forget_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// Drops every page, and every fetch still under way.
    fn clear(&mut self) {
        self.pages.clear();
        self.names = 0;
        self.seq += 1;
        self.floor = self.seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(5);

    fn attr(ino: u64, size: u64) -> pb::Attr {
        pb::Attr {
            ino,
            size,
            ..Default::default()
        }
    }

    /// A directory 7 whose page holds a (ino 10) and b (ino 11), read after two lookups.
    fn scanned() -> NameCache {
        let c = NameCache::default();
        assert_eq!(c.on_miss(7, TTL), Miss::Lookup, "no scan seen yet");
        c.found(7, TTL);
        c.found(7, TTL);
        let Miss::Page { cookie: 0, seq } = c.on_miss(7, TTL) else {
            panic!("two names found: the next miss reads a page");
        };
        let page = vec![("a".into(), attr(10, 1)), ("b".into(), attr(11, 2))];
        c.store(7, seq, page, None);
        c
    }

    #[test]
    fn a_page_answers_its_names_within_the_ttl_only() {
        let c = scanned();
        assert_eq!(c.hit(7, "a", TTL).map(|a| a.size), Some(1));
        assert_eq!(c.hit(7, "b", TTL).map(|a| a.ino), Some(11));
        assert!(
            c.hit(7, "zz", TTL).is_none(),
            "names not on it are asked for"
        );
        assert!(c.hit(8, "a", TTL).is_none(), "another directory");
        assert!(c.hit(7, "a", Duration::ZERO).is_none(), "past the ttl");
        assert_eq!(
            c.on_miss(7, TTL),
            Miss::Lookup,
            "a complete page reads no more"
        );
    }

    #[test]
    fn a_change_here_hides_the_inode_until_the_next_page() {
        let c = scanned();
        c.mark(10);
        assert!(c.hit(7, "a", TTL).is_none(), "a's size may have changed");
        assert!(c.hit(7, "b", TTL).is_some());
        // A page fetched after the change answers for it again.
        let Miss::Page { seq, .. } = ({
            c.forget_all();
            c.found(7, TTL);
            c.found(7, TTL);
            c.on_miss(7, TTL)
        }) else {
            panic!("a page");
        };
        c.store(7, seq, vec![("a".into(), attr(10, 9))], None);
        assert_eq!(c.hit(7, "a", TTL).map(|a| a.size), Some(9));
    }

    #[test]
    fn a_page_whose_fetch_overlapped_a_change_is_not_trusted() {
        let c = NameCache::default();
        c.found(7, TTL);
        c.found(7, TTL);
        let Miss::Page { seq, .. } = c.on_miss(7, TTL) else {
            panic!("a page");
        };
        // During the fetch: a's data committed, and a rename somewhere.
        c.mark(10);
        let page = vec![("a".into(), attr(10, 1)), ("b".into(), attr(11, 2))];
        c.store(7, seq, page.clone(), None);
        assert!(c.hit(7, "a", TTL).is_none());
        assert!(c.hit(7, "b", TTL).is_some());
        c.forget_all();
        let seq = seq + 1;
        c.store(7, seq, page, None);
        assert!(c.hit(7, "b", TTL).is_none(), "fetched before forget_all");
    }

    #[test]
    fn creates_and_unlinks_here_edit_the_page() {
        let c = scanned();
        c.added(7, "n", &attr(12, 0));
        assert_eq!(c.hit(7, "n", TTL).map(|a| a.ino), Some(12));
        c.removed(7, "a");
        assert!(c.hit(7, "a", TTL).is_none());
        assert!(c.hit(7, "b", TTL).is_some(), "the rest of the page stays");
        // A link of b elsewhere changes its count: its old entry stops answering.
        c.added(9, "b2", &attr(11, 2));
        assert!(c.hit(7, "b", TTL).is_none());
        // An unlink of a name no page holds: which inode it was is unknown here.
        c.removed(9, "unknown");
        assert!(c.hit(7, "n", TTL).is_none());
    }

    #[test]
    fn a_partial_page_reads_on_only_once_it_served() {
        let c = NameCache::default();
        c.found(7, TTL);
        c.found(7, TTL);
        let Miss::Page { seq, .. } = c.on_miss(7, TTL) else {
            panic!("a page");
        };
        let page = (0..PAGE as u64)
            .map(|i| (format!("f{i}"), attr(100 + i, 0)))
            .collect();
        c.store(7, seq, page, Some(41));
        assert_eq!(
            c.on_miss(7, TTL),
            Miss::Lookup,
            "no hits yet: random lookups"
        );
        for i in 0..HITS_BEFORE_NEXT_PAGE {
            assert!(c.hit(7, &format!("f{i}"), TTL).is_some());
        }
        assert!(matches!(c.on_miss(7, TTL), Miss::Page { cookie: 41, .. }));
    }
}
