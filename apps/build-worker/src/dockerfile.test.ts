import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commandOf, goList, parseDockerfile, replaceEnv } from './dockerfile';

test('comments go first, then continuations join lines, then one step per line', () => {
  const steps = parseDockerfile('# a comment\nFROM busybox\n  # indented is not a comment\nRUN echo a \\\n# dropped before joining\n   && echo b\n\n\tcmd  [ "x" ]  \n');
  assert.deepEqual(steps, [
    { line: 'FROM busybox', instruction: 'FROM', args: 'busybox' },
    { line: '# indented is not a comment', instruction: '#', args: 'indented is not a comment' },
    { line: 'RUN echo a   && echo b', instruction: 'RUN', args: 'echo a   && echo b' },
    { line: 'cmd  [ "x" ]', instruction: 'CMD', args: '[ "x" ]' },
  ]);
});

test('a line without arguments is refused as Docker 1.0 refused it', () => {
  assert.throws(() => parseDockerfile('FROM busybox\nRUN\n'), /Invalid Dockerfile format/);
});

test('exec and shell forms; Go list rendering', () => {
  assert.deepEqual(commandOf('["echo", "a b"]'), ['echo', 'a b']);
  assert.deepEqual(commandOf('echo "a b"'), ['/bin/sh', '-c', 'echo "a b"']);
  assert.deepEqual(commandOf('[not json'), ['/bin/sh', '-c', '[not json']);
  assert.equal(goList(['/bin/sh', '-c', 'exit 3']), '[/bin/sh -c exit 3]');
});

test('variables: $NAME and ${NAME} from the environment, unknown ones and \\$ left as written', () => {
  const env = ['HOME=/root', 'APP=/srv/app', 'EMPTY='];
  assert.equal(replaceEnv('$APP/bin:${HOME}', env), '/srv/app/bin:/root');
  assert.equal(replaceEnv('$NOPE ${NOPE} \\$APP x$EMPTY.', env), '$NOPE ${NOPE} \\$APP x.');
});
