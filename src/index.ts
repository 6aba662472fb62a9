// One bundle for main and post: the main run leaves a mark in the action state.
import { isPost } from './state.js';
import { runMain, runPost } from './main.js';

await (isPost() ? runPost() : runMain());
