import { PRIORITIES } from '../shared/priorities'
import { VERSION } from '../shared/version'
import { JwtRevocationHandler, NAME } from './handler'
import { Schema as ConfigSchema } from './schema'

export const Name = NAME
export const Version = VERSION
export const Priority = PRIORITIES[NAME]
export const Schema = ConfigSchema
export const Plugin = JwtRevocationHandler
