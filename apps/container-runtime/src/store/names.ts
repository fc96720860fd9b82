// Container names and IDs as Docker 1.0 made and checked them.
import { randomBytes, randomInt } from 'node:crypto';
import { refused } from '@stevedore/errors';

const ADJECTIVES = ['admiring', 'agitated', 'angry', 'berserk', 'boring', 'clever', 'cocky', 'compassionate', 'condescending', 'cranky', 'desperate', 'determined', 'distracted', 'dreamy', 'drunk', 'ecstatic', 'elated', 'elegant', 'evil', 'fervent', 'focused', 'furious', 'gloomy', 'goofy', 'grave', 'happy', 'high', 'hopeful', 'hungry', 'insane', 'jolly', 'jovial', 'kickass', 'lonely', 'loving', 'mad', 'modest', 'naughty', 'nostalgic', 'pensive', 'prickly', 'reverent', 'romantic', 'sad', 'serene', 'sharp', 'sick', 'silly', 'sleepy', 'stoic', 'stupefied', 'suspicious', 'tender', 'thirsty', 'trusting'];
const SURNAMES = ['albattani', 'almeida', 'archimedes', 'ardinghelli', 'babbage', 'bardeen', 'bartik', 'bell', 'blackwell', 'bohr', 'brattain', 'brown', 'carson', 'colden', 'curie', 'darwin', 'davinci', 'einstein', 'elion', 'engelbart', 'euclid', 'fermat', 'fermi', 'feynman', 'franklin', 'galileo', 'goldstine', 'goodall', 'hawking', 'heisenberg', 'hodgkin', 'hoover', 'hopper', 'hypatia', 'jones', 'kirch', 'kowalevski', 'lalande', 'leakey', 'lovelace', 'lumiere', 'mayer', 'mccarthy', 'mcclintock', 'mclean', 'meitner', 'mestorf', 'morse', 'newton', 'nobel', 'pare', 'pasteur', 'perlman', 'pike', 'poincare', 'ptolemy', 'ritchie', 'rosalind', 'sammet', 'shockley', 'sinoussi', 'stallman', 'tesla', 'thompson', 'torvalds', 'turing', 'wilson', 'wozniak', 'wright', 'yalow', 'yonath'];

export function randomName(attempt: number): string {
  const name = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${SURNAMES[randomInt(SURNAMES.length)]}`;
  return attempt > 0 ? `${name}${randomInt(10)}` : name;
}

/** Docker 1.0 accepted `^/?[a-zA-Z0-9_.-]+$`; it answered 500 otherwise. */
export function checkName(name: string): string {
  if (!/^\/?[a-zA-Z0-9_.-]+$/.test(name)) throw refused(`Invalid container name (${name}), only [a-zA-Z0-9_.-] are allowed`);
  return name.startsWith('/') ? name : `/${name}`;
}

/** 64 hex characters whose first 12 are not all digits. */
export function newContainerId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    if (!/^\d{12}/.test(id)) return id;
  }
}
