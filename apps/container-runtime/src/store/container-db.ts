// Containers' durable records in SQLite. A state change that must not be
// half-done (created, started, exited, removed) is one named statement or
// transaction.
import Database from 'better-sqlite3';
import { notFound } from '@stevedore/errors';

export interface ContainerRow {
  id: string;
  name: string;
  /** RFC 3339 with nanoseconds. */
  created: string;
  image_id: string;
  image_name: string;
  config: string;
  host_config: string;
  /** created | running | exited */
  status: string;
  pid: number;
  exit_code: number;
  started_at: string;
  finished_at: string;
  paused: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS containers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created TEXT NOT NULL,
  image_id TEXT NOT NULL,
  image_name TEXT NOT NULL,
  config TEXT NOT NULL,
  host_config TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'created',
  pid INTEGER NOT NULL DEFAULT 0,
  exit_code INTEGER NOT NULL DEFAULT 0,
  started_at TEXT NOT NULL DEFAULT '',
  finished_at TEXT NOT NULL DEFAULT '',
  paused INTEGER NOT NULL DEFAULT 0,
  seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS volumes (
  container_id TEXT NOT NULL,
  path TEXT NOT NULL,
  host_path TEXT NOT NULL,
  rw INTEGER NOT NULL,
  -- 1: a data volume under the data root (rm -v may delete it); 0: a bind of the host's
  managed INTEGER NOT NULL,
  PRIMARY KEY (container_id, path)
);
CREATE INDEX IF NOT EXISTS volumes_by_host_path ON volumes (host_path);
CREATE TABLE IF NOT EXISTS ports (
  container_id TEXT NOT NULL,
  container_port INTEGER NOT NULL,
  protocol TEXT NOT NULL,
  host_ip TEXT NOT NULL,
  host_port INTEGER NOT NULL
);
-- The names links give: /<parent's name>/<alias> names the child.
CREATE TABLE IF NOT EXISTS links (
  parent_id TEXT NOT NULL,
  alias TEXT NOT NULL,
  child_id TEXT NOT NULL,
  PRIMARY KEY (parent_id, alias)
);
CREATE TABLE IF NOT EXISTS event_outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS networks (
  container_id TEXT PRIMARY KEY,
  ip_address TEXT NOT NULL,
  ip_prefix_len INTEGER NOT NULL,
  gateway TEXT NOT NULL,
  mac_address TEXT NOT NULL,
  bridge TEXT NOT NULL
);
`;

export interface PortRow {
  container_id: string;
  container_port: number;
  protocol: string;
  host_ip: string;
  host_port: number;
}

export interface NetworkRow {
  container_id: string;
  ip_address: string;
  ip_prefix_len: number;
  gateway: string;
  mac_address: string;
  bridge: string;
}

export interface VolumeRow {
  container_id: string;
  path: string;
  host_path: string;
  rw: number;
  managed: number;
}

export class ContainerDb {
  readonly db: Database.Database;
  private readonly s;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    const db = this.db;
    this.s = {
      insert: db.prepare(`INSERT INTO containers (id, name, created, image_id, image_name, config, host_config, seq)
        VALUES (@id, @name, @created, @image_id, @image_name, @config, @host_config, (SELECT coalesce(max(seq), 0) + 1 FROM containers))`),
      get: db.prepare('SELECT * FROM containers WHERE id = ?'),
      queueEvent: db.prepare('INSERT INTO event_outbox (event) VALUES (?)'),
      queuedEvents: db.prepare('SELECT seq, event FROM event_outbox ORDER BY seq LIMIT ?'),
      dropQueuedEvent: db.prepare('DELETE FROM event_outbox WHERE seq = ?'),
      byName: db.prepare('SELECT * FROM containers WHERE name = ?'),
      byPrefix: db.prepare("SELECT * FROM containers WHERE id >= ? AND id < ? || 'g' LIMIT 2"),
      all: db.prepare('SELECT * FROM containers ORDER BY seq DESC'),
      started: db.prepare("UPDATE containers SET status = 'running', pid = ?, started_at = ?, paused = 0 WHERE id = ?"),
      exited: db.prepare("UPDATE containers SET status = 'exited', pid = 0, exit_code = ?, finished_at = ?, paused = 0 WHERE id = ?"),
      hostConfig: db.prepare('UPDATE containers SET host_config = ? WHERE id = ?'),
      paused: db.prepare('UPDATE containers SET paused = ? WHERE id = ?'),
      remove: db.prepare('DELETE FROM containers WHERE id = ?'),
      volumes: db.prepare('SELECT * FROM volumes WHERE container_id = ? ORDER BY path'),
      addVolume: db.prepare('INSERT INTO volumes (container_id, path, host_path, rw, managed) VALUES (@container_id, @path, @host_path, @rw, @managed)'),
      removeVolumes: db.prepare('DELETE FROM volumes WHERE container_id = ?'),
      network: db.prepare('SELECT * FROM networks WHERE container_id = ?'),
      setNetwork: db.prepare('INSERT OR REPLACE INTO networks VALUES (@container_id, @ip_address, @ip_prefix_len, @gateway, @mac_address, @bridge)'),
      removeNetwork: db.prepare('DELETE FROM networks WHERE container_id = ?'),
      ports: db.prepare('SELECT * FROM ports WHERE container_id = ? ORDER BY container_port, protocol'),
      allPorts: db.prepare('SELECT host_port, protocol FROM ports'),
      addPort: db.prepare('INSERT INTO ports VALUES (@container_id, @container_port, @protocol, @host_ip, @host_port)'),
      removePorts: db.prepare('DELETE FROM ports WHERE container_id = ?'),
      volumeUsers: db.prepare('SELECT count(*) AS n FROM volumes WHERE host_path = ?'),
      setLink: db.prepare('INSERT OR REPLACE INTO links (parent_id, alias, child_id) VALUES (?, ?, ?)'),
      linkNames: db.prepare("SELECT c.name || '/' || l.alias AS name FROM links l JOIN containers c ON c.id = l.parent_id WHERE l.child_id = ? ORDER BY name"),
      removeLink: db.prepare('DELETE FROM links WHERE parent_id = ? AND alias = ?'),
      removeLinksOf: db.prepare('DELETE FROM links WHERE parent_id = ? OR child_id = ?'),
      count: db.prepare("SELECT count(*) AS n, sum(status = 'running') AS running, sum(paused) AS paused FROM containers"),
    };
  }

  close(): void {
    this.db.close();
  }

  /** createContainer: fails when the name is taken (UNIQUE). */
  readonly createContainer = (row: Pick<ContainerRow, 'id' | 'name' | 'created' | 'image_id' | 'image_name' | 'config' | 'host_config'>): void => {
    this.s.insert.run(row);
  };

  get(id: string): ContainerRow | undefined {
    return this.s.get.get(id) as ContainerRow | undefined;
  }

  byName(name: string): ContainerRow | undefined {
    return this.s.byName.get(name) as ContainerRow | undefined;
  }

  byPrefix(prefix: string): ContainerRow[] {
    return this.s.byPrefix.all(prefix, prefix) as ContainerRow[];
  }

  /** A container by name (with or without its '/'), full ID, or unique ID prefix; 404 when there is none. */
  resolve(ref: string): ContainerRow {
    const uniquePrefix = () => {
      const rows = /^[0-9a-f]+$/.test(ref) ? this.byPrefix(ref) : [];
      return rows.length === 1 ? rows[0] : undefined;
    };
    // A full ID first, as Docker looks: a container named after another's ID never stands in for it.
    const row = this.get(ref) ?? this.byName(ref.startsWith('/') ? ref : `/${ref}`) ?? uniquePrefix();
    if (!row) throw notFound(`No such container: ${ref}`);
    return row;
  }

  /** Newest first. */
  all(): ContainerRow[] {
    return this.s.all.all() as ContainerRow[];
  }

  /** Events not yet in the event log (event-outbox.ts), oldest first. */
  readonly queueEvent = (event: string): void => {
    this.s.queueEvent.run(event);
  };

  readonly queuedEvents = (limit = 256): Array<{ seq: number; event: string }> => this.s.queuedEvents.all(limit) as Array<{ seq: number; event: string }>;

  readonly dropQueuedEvent = (seq: number): void => {
    this.s.dropQueuedEvent.run(seq);
  };

  /** Runs `fn` in one transaction: all of its changes are recorded, or none. */
  readonly transaction = <T>(fn: () => T): T => this.db.transaction(fn)();

  /** markStarted: the container's process runs. */
  readonly markStarted = (id: string, pid: number, startedAt: string): void => {
    this.s.started.run(pid, startedAt, id);
  };

  /** markExited: the process ended with this code. */
  readonly markExited = (id: string, exitCode: number, finishedAt: string): void => {
    this.s.exited.run(exitCode, finishedAt, id);
  };

  readonly setHostConfig = (id: string, hostConfig: string): void => {
    this.s.hostConfig.run(hostConfig, id);
  };

  readonly setPaused = (id: string, paused: boolean): void => {
    this.s.paused.run(paused ? 1 : 0, id);
  };

  /**
   * removeContainer: the record and its volumes' records go, in one
   * transaction. Returns the data volumes' directories that no other
   * container uses any more.
   */
  readonly removeContainer = (id: string): string[] =>
    this.db.transaction(() => {
      const volumes = this.volumes(id);
      this.s.removeVolumes.run(id);
      this.s.removeLinksOf.run(id, id);
      this.s.remove.run(id);
      return volumes.filter((v) => v.managed && (this.s.volumeUsers.get(v.host_path) as { n: number }).n === 0).map((v) => v.host_path);
    })();

  /** The names the links of other containers give this one (`/parent/alias`). */
  linkNames(id: string): string[] {
    return (this.s.linkNames.all(id) as Array<{ name: string }>).map((r) => r.name);
  }

  /** setLink / removeLink: `/parent/alias` names `child` (recorded when the parent starts with the link). */
  readonly setLink = (parentId: string, alias: string, childId: string): void => {
    this.s.setLink.run(parentId, alias, childId);
  };

  /** Whether there was such a link. */
  readonly removeLink = (parentId: string, alias: string): boolean => this.s.removeLink.run(parentId, alias).changes > 0;

  network(id: string): NetworkRow | undefined {
    return this.s.network.get(id) as NetworkRow | undefined;
  }

  /** setNetwork / removeNetwork: the container's address on the bridge while it has one. */
  readonly setNetwork = (row: NetworkRow): void => {
    this.s.setNetwork.run(row);
  };

  readonly removeNetwork = (id: string): void => {
    this.db.transaction(() => {
      this.s.removeNetwork.run(id);
      this.s.removePorts.run(id);
    })();
  };

  ports(id: string): PortRow[] {
    return this.s.ports.all(id) as PortRow[];
  }

  /** Host ports given to containers, as `port/protocol`. */
  takenPorts(): Set<string> {
    return new Set((this.s.allPorts.all() as Array<{ host_port: number; protocol: string }>).map((r) => `${r.host_port}/${r.protocol}`));
  }

  /** setNetwork with the ports published through it, in one transaction. */
  readonly setNetworkAndPorts = (row: NetworkRow, ports: PortRow[]): void => {
    this.db.transaction(() => {
      this.s.setNetwork.run(row);
      for (const p of ports) this.s.addPort.run(p);
    })();
  };

  volumes(id: string): VolumeRow[] {
    return this.s.volumes.all(id) as VolumeRow[];
  }

  /** setVolumes: a container's volumes, recorded once (at its first start). */
  readonly setVolumes = (rows: VolumeRow[]): void => {
    this.db.transaction(() => {
      for (const r of rows) this.s.addVolume.run(r);
    })();
  };

  counts(): { total: number; running: number; paused: number } {
    const r = this.s.count.get() as { n: number; running: number | null; paused: number | null };
    return { total: r.n, running: r.running ?? 0, paused: r.paused ?? 0 };
  }
}
