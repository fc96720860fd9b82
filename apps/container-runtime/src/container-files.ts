// The files the runtime writes for a container at each start and mounts into
// it: /etc/hostname, /etc/hosts (its own name, and its links' aliases) and
// /etc/resolv.conf (the DNS it was given, or the host's). They live in the
// container's directory, outside its layers: a commit never takes them.
// (container-fs.ts is the other way round: a container's files read or
// written from outside.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ContainerConfig, HostConfig } from '@stevedore/docker-api';

export interface EtcFiles {
  hostname: string;
  hosts: string;
  resolvConf: string;
}

/** Where a container's files are, in its directory. */
export function etcFilePaths(containerDir: string): EtcFiles {
  return { hostname: path.join(containerDir, 'hostname'), hosts: path.join(containerDir, 'hosts'), resolvConf: path.join(containerDir, 'resolv.conf') };
}

const HOSTS_HEAD = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';

/** The name servers Docker fell back on when the host had none a container could use. */
const FALLBACK_NAMESERVERS = '\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n';

/**
 * Writes the container's files; answers with their paths and its host name
 * (its Hostname, or its short ID).
 */
export function writeEtcFiles(
  containerDir: string,
  id: string,
  config: ContainerConfig,
  hostConfig: HostConfig,
  ipAddress?: string,
  links: Array<{ alias: string; ipAddress: string }> = [],
): EtcFiles & { name: string } {
  const hostname = config.Hostname || id.slice(0, 12);
  const files = { ...etcFilePaths(containerDir), name: hostname };
  // Mounted into the container, where every user reads them: 0644 (the container's directory keeps the host's users out).
  const world = { mode: 0o644 };
  fs.writeFileSync(files.hostname, `${hostname}\n`, world);
  const fqdn = config.Domainname ? `${hostname}.${config.Domainname} ${hostname}` : hostname;
  // On the bridge the container's own name maps to its address, as Docker's did; links add their aliases.
  const own = `${ipAddress ?? '127.0.1.1'}\t${fqdn}\n`;
  const linked = links.map((l) => `${l.ipAddress}\t${l.alias}\n`).join('');
  fs.writeFileSync(files.hosts, `${HOSTS_HEAD}${own}${linked}`, world);
  fs.writeFileSync(files.resolvConf, resolvConf(hostConfig), world);
  return files;
}

function resolvConf(hostConfig: HostConfig): string {
  let resolv = '';
  if (hostConfig.Dns?.length) resolv += hostConfig.Dns.map((d) => `nameserver ${d}\n`).join('');
  else {
    try {
      // The host's, without loopback name servers (they mean nothing inside).
      resolv = fs.readFileSync('/etc/resolv.conf', 'utf8').split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1)/.test(l)).join('\n');
    } catch {
      resolv = '';
    }
    if (!/^\s*nameserver/m.test(resolv)) resolv += FALLBACK_NAMESERVERS;
  }
  if (hostConfig.DnsSearch?.length) resolv = `${resolv.replace(/^search .*$/m, '')}\nsearch ${hostConfig.DnsSearch.join(' ')}\n`;
  return resolv;
}
