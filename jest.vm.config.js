// The VM suite (npm run test:vm): real guests under QEMU; one file, minutes long.
import base from './jest.config.js';

export default { ...base, testMatch: ['<rootDir>/test/vm/**/*.test.ts'], testTimeout: 60000 };
