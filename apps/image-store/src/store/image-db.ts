// The image store's durable metadata in SQLite: images (one layer each, a
// parent chain), repositories and tags, and the references that keep an
// image from disappearing under a container. Every change that must not be
// half-done is one named transaction.
import Database from 'better-sqlite3';
import type { StoredImage } from '@stevedore/docker-api';

export interface ImageRow {
  id: string;
  parent: string | null;
  /** Unix milliseconds. */
  created: number;
  size: number;
  /** The layer directory's name under the layer root. */
  layer: string;
  /** sha256 of the archive as received, when it came as one. */
  source_digest: string | null;
  /** StoredImage JSON. */
  meta: string;
  /** The digest and size of the layer's tar, once a node of a cluster asked for it (computed then). */
  layer_digest?: string | null;
  layer_tar_size?: number | null;
}

export interface BlobRow {
  image_id: string;
  digest: string;
  diff_id: string;
  size: number;
  media_type: string;
}

export interface ImageUserRow {
  image_id: string;
  /** A container's ID. */
  user_id: string;
  running: number;
  /** The cluster node the container is on ('' on a single host). */
  node?: string;
}

export interface TagRow {
  repo: string;
  tag: string;
  image_id: string;
}

/** A tag an operation set, and the image it named before (to put it back if the operation is undone). */
export interface SetTag extends TagRow {
  previous?: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS images (
  id TEXT PRIMARY KEY,
  parent TEXT REFERENCES images(id),
  created INTEGER NOT NULL,
  size INTEGER NOT NULL,
  layer TEXT NOT NULL UNIQUE,
  source_digest TEXT,
  meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_parent ON images(parent);
CREATE TABLE IF NOT EXISTS tags (
  repo TEXT NOT NULL,
  tag TEXT NOT NULL,
  image_id TEXT NOT NULL REFERENCES images(id),
  PRIMARY KEY (repo, tag)
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
-- Registry blobs known to hold an image's layer: the compressed digest and the
-- digest of the uncompressed tar it unpacks to (a registry config's diff_id).
CREATE TABLE IF NOT EXISTS image_blobs (
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  digest TEXT NOT NULL,
  diff_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  media_type TEXT NOT NULL,
  PRIMARY KEY (image_id, digest)
);
-- Who uses an image (a container's ID): such an image cannot be deleted.
CREATE TABLE IF NOT EXISTS image_users (
  image_id TEXT NOT NULL REFERENCES images(id),
  user_id TEXT NOT NULL,
  running INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (image_id, user_id)
);
`;

export class ImageDb {
  readonly db: Database.Database;
  private readonly stmts;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    // Columns later versions added, to a database an earlier one made.
    const columns = (table: string) => new Set((this.db.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name));
    if (!columns('image_users').has('node')) this.db.exec("ALTER TABLE image_users ADD COLUMN node TEXT NOT NULL DEFAULT ''");
    if (!columns('images').has('layer_digest')) this.db.exec('ALTER TABLE images ADD COLUMN layer_digest TEXT; ALTER TABLE images ADD COLUMN layer_tar_size INTEGER');
    this.db.exec('CREATE INDEX IF NOT EXISTS images_layer_digest ON images(layer_digest)');
    const db = this.db;
    this.stmts = {
      insertImage: db.prepare('INSERT INTO images (id, parent, created, size, layer, source_digest, meta) VALUES (@id, @parent, @created, @size, @layer, @source_digest, @meta)'),
      getImage: db.prepare('SELECT * FROM images WHERE id = ?'),
      byPrefix: db.prepare("SELECT * FROM images WHERE id >= ? AND id < ? || 'g' LIMIT 2"),
      allImages: db.prepare('SELECT * FROM images'),
      children: db.prepare('SELECT id FROM images WHERE parent = ?'),
      hasChildren: db.prepare('SELECT 1 FROM images WHERE parent = ? LIMIT 1'),
      allTags: db.prepare('SELECT * FROM tags ORDER BY repo, tag'),
      tagsOf: db.prepare('SELECT * FROM tags WHERE image_id = ? ORDER BY repo, tag'),
      getTag: db.prepare('SELECT * FROM tags WHERE repo = ? AND tag = ?'),
      repoTags: db.prepare('SELECT * FROM tags WHERE repo = ? ORDER BY tag'),
      upsertTag: db.prepare('INSERT INTO tags (repo, tag, image_id) VALUES (?, ?, ?) ON CONFLICT(repo, tag) DO UPDATE SET image_id = excluded.image_id'),
      deleteTag: db.prepare('DELETE FROM tags WHERE repo = ? AND tag = ?'),
      deleteImage: db.prepare('DELETE FROM images WHERE id = ?'),
      usersOf: db.prepare('SELECT * FROM image_users WHERE image_id = ?'),
      addUser: db.prepare('INSERT OR REPLACE INTO image_users (image_id, user_id, running, node) VALUES (?, ?, ?, ?)'),
      removeUser: db.prepare('DELETE FROM image_users WHERE user_id = ?'),
      usersOn: db.prepare('SELECT * FROM image_users WHERE node = ?'),
      removeUsersOn: db.prepare('DELETE FROM image_users WHERE node = ?'),
      setLayerDigest: db.prepare('UPDATE images SET layer_digest = ?, layer_tar_size = ? WHERE id = ?'),
      byLayerDigest: db.prepare('SELECT * FROM images WHERE layer_digest = ? LIMIT 1'),
      count: db.prepare('SELECT count(*) AS n FROM images'),
      blobsOf: db.prepare('SELECT * FROM image_blobs WHERE image_id = ?'),
      addBlob: db.prepare('INSERT OR REPLACE INTO image_blobs (image_id, digest, diff_id, size, media_type) VALUES (@image_id, @digest, @diff_id, @size, @media_type)'),
      deleteBlobs: db.prepare('DELETE FROM image_blobs WHERE image_id = ?'),
      layers: db.prepare('SELECT layer FROM images'),
    };
  }

  close(): void {
    this.db.close();
  }

  get(id: string): ImageRow | undefined {
    return this.stmts.getImage.get(id) as ImageRow | undefined;
  }

  /** The images whose ID starts with `prefix`: at most two (enough to know it is ambiguous). */
  byPrefix(prefix: string): ImageRow[] {
    return this.stmts.byPrefix.all(prefix, prefix) as ImageRow[];
  }

  all(): ImageRow[] {
    return this.stmts.allImages.all() as ImageRow[];
  }

  count(): number {
    return (this.stmts.count.get() as { n: number }).n;
  }

  layerNames(): Set<string> {
    return new Set((this.stmts.layers.all() as Array<{ layer: string }>).map((r) => r.layer));
  }

  children(id: string): string[] {
    return (this.stmts.children.all(id) as Array<{ id: string }>).map((r) => r.id);
  }

  hasChildren(id: string): boolean {
    return this.stmts.hasChildren.get(id) !== undefined;
  }

  allTags(): TagRow[] {
    return this.stmts.allTags.all() as TagRow[];
  }

  tagsOf(id: string): TagRow[] {
    return this.stmts.tagsOf.all(id) as TagRow[];
  }

  getTag(repo: string, tag: string): TagRow | undefined {
    return this.stmts.getTag.get(repo, tag) as TagRow | undefined;
  }

  repoTags(repo: string): TagRow[] {
    return this.stmts.repoTags.all(repo) as TagRow[];
  }

  usersOf(id: string): Array<{ user_id: string; running: number }> {
    return this.stmts.usersOf.all(id) as Array<{ user_id: string; running: number }>;
  }

  /**
   * registerImage: a new image whose layer directory is already complete,
   * with the tag and the registry blob given, in one transaction.
   */
  readonly registerImage = (row: ImageRow, extra: { tag?: { repo: string; tag: string }; blob?: Omit<BlobRow, 'image_id'> } = {}): void => {
    this.db.transaction(() => {
      this.stmts.insertImage.run(row);
      if (extra.tag) this.stmts.upsertTag.run(extra.tag.repo, extra.tag.tag, row.id);
      if (extra.blob) this.stmts.addBlob.run({ ...extra.blob, image_id: row.id });
    })();
  };

  /**
   * undoRegistrations: images an operation registered, forgotten (children
   * before parents) unless something else came to need them (a tag, a
   * child, a user), after the tags it set on them are put back as they were,
   * in one transaction. Returns the rows forgotten, so that their layers can go.
   */
  readonly undoRegistrations = (ids: string[], tags: SetTag[] = []): ImageRow[] =>
    this.db.transaction(() => {
      const undone = new Set(ids);
      for (const t of [...tags].reverse()) {
        if (!undone.has(t.image_id) || this.getTag(t.repo, t.tag)?.image_id !== t.image_id) continue;
        if (t.previous && this.get(t.previous)) this.stmts.upsertTag.run(t.repo, t.tag, t.previous);
        else this.stmts.deleteTag.run(t.repo, t.tag);
      }
      const forgotten: ImageRow[] = [];
      for (const id of ids) {
        const row = this.get(id);
        if (!row || this.tagsOf(id).length > 0 || this.hasChildren(id) || this.usersOf(id).length > 0) continue;
        this.deleteImageRow(id);
        forgotten.push(row);
      }
      return forgotten;
    })();

  /** tagImage: points repo:tag at an image (moving it if it pointed elsewhere). */
  readonly tagImage = (repo: string, tag: string, imageId: string): void => {
    this.stmts.upsertTag.run(repo, tag, imageId);
  };

  /** untagImage: removes one tag. */
  readonly untagImage = (repo: string, tag: string): boolean => this.stmts.deleteTag.run(repo, tag).changes > 0;

  /** deleteImageRow: forgets an image that has no tags, children or users. */
  readonly deleteImageRow = (id: string): void => {
    this.stmts.deleteBlobs.run(id);
    this.stmts.deleteImage.run(id);
  };

  blobsOf(id: string): BlobRow[] {
    return this.stmts.blobsOf.all(id) as BlobRow[];
  }

  /** recordBlob: a registry blob known to hold an image's layer. */
  readonly recordBlob = (row: BlobRow): void => {
    this.stmts.addBlob.run(row);
  };

  /** A batch of changes as one transaction. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** useImage: records that a container (on a cluster's node) uses an image. */
  readonly useImage = (imageId: string, userId: string, running = false, node = ''): void => {
    this.stmts.addUser.run(imageId, userId, running ? 1 : 0, node);
  };

  /** recordLayerDigest: the digest and size of an image's layer tar, once computed. */
  readonly recordLayerDigest = (id: string, digest: string, size: number): void => {
    this.stmts.setLayerDigest.run(digest, size, id);
  };

  byLayerDigest(digest: string): ImageRow | undefined {
    return this.stmts.byLayerDigest.get(digest) as ImageRow | undefined;
  }

  /** releaseImage: a container no longer uses its image. */
  readonly releaseImage = (userId: string): void => {
    this.stmts.removeUser.run(userId);
  };

  /**
   * reconcileImageUse: one container runtime's uses (a cluster's node's, or
   * the single host's: node '') replaced by its account of them, in one
   * transaction (a use or release call made meanwhile comes before or after
   * it, never half-way). A use of an image this store does not have is not
   * recorded (the foreign key); it is returned.
   */
  readonly reconcileImageUse = (uses: ImageUserRow[], node = ''): { unknown: ImageUserRow[]; added: number; dropped: number } =>
    this.db.transaction(() => {
      const key = (u: ImageUserRow) => `${u.image_id} ${u.user_id} ${u.running ? 1 : 0}`;
      const before = new Set((this.stmts.usersOn.all(node) as ImageUserRow[]).map(key));
      this.stmts.removeUsersOn.run(node);
      const unknown: ImageUserRow[] = [];
      const after = new Set<string>();
      for (const u of uses) {
        if (!this.get(u.image_id)) {
          unknown.push(u);
          continue;
        }
        this.stmts.addUser.run(u.image_id, u.user_id, u.running ? 1 : 0, node);
        after.add(key(u));
      }
      return { unknown, added: [...after].filter((k) => !before.has(k)).length, dropped: [...before].filter((k) => !after.has(k)).length };
    })();
}

export function parseMeta(row: ImageRow): StoredImage {
  return JSON.parse(row.meta) as StoredImage;
}
