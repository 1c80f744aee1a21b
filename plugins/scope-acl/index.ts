import { PRIORITIES } from '../shared/priorities'
import { VERSION } from '../shared/version'
import { NAME, ScopeAclPlugin } from './handler'
import { Schema as fields } from './schema'

export const Name = NAME
export const Version = VERSION
export const Priority = PRIORITIES['scope-acl']
export const Schema = fields
export const Plugin = ScopeAclPlugin
