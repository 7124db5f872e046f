/** Every case of the battery, by area. */
import type { Case } from '../types.js';
import { copyCases } from './copy.js';
import { addCases } from './add.js';
import { filterCases } from './filters.js';
import { argCases } from './args.js';
import { workdirUserCases } from './workdir-user.js';
import { configCases } from './config.js';
import { stageCases } from './stages.js';
import { heredocCases } from './heredoc.js';
import { mountCases } from './mounts.js';
import { errorCases } from './errors.js';

export const CASES: Case[] = [
  ...copyCases,
  ...addCases,
  ...filterCases,
  ...argCases,
  ...workdirUserCases,
  ...configCases,
  ...stageCases,
  ...heredocCases,
  ...mountCases,
  ...errorCases,
];
