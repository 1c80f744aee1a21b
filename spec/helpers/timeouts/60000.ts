import { jest } from '@jest/globals'

// The timeout of every test and hook of this tier (jest.config.js).
jest.setTimeout(60000)
