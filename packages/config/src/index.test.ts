import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from './index';

test('a TCP Redis needs a password, and TLS off this host', () => {
  const redisUrl = (url: string) => loadConfig({ REDIS_URL: url }).redisUrl;
  assert.equal(redisUrl('unix:///run/r.sock'), 'unix:///run/r.sock');
  assert.equal(redisUrl('redis://:pw@127.0.0.1:6379'), 'redis://:pw@127.0.0.1:6379');
  assert.equal(redisUrl('redis://default:pw@[::1]:6379/2'), 'redis://default:pw@[::1]:6379/2');
  assert.equal(redisUrl('rediss://:pw@redis.internal:6380'), 'rediss://:pw@redis.internal:6380');
  assert.throws(() => redisUrl('redis://127.0.0.1:6379'), /without a password/);
  assert.throws(() => redisUrl('rediss://user@redis.internal:6380'), /without a password/);
  assert.throws(() => redisUrl('redis://:pw@10.1.2.3:6379'), /off this host, without TLS: use rediss/);
  assert.throws(() => redisUrl('http://:pw@127.0.0.1'), /must be unix/);
  assert.throws(() => redisUrl('127.0.0.1:6379'), /must be unix/);
  assert.throws(() => redisUrl('REDISS://:pw@redis.internal:6380'), /in lower case/, 'the client would not use TLS for it');
  assert.match(loadConfig({ STEVEDORE_ROOT: '/srv/sd' }).redisUrl, /^unix:\/\/\/srv\/sd\/run\/redis\.sock$/);
});
