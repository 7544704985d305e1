#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';

const code = await main(process.argv);
// Every command closes what it opened; exiting here also ends any straggling socket or timer.
process.exit(code);
