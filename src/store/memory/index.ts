export { type InMemoryStoreOptions, InMemoryUserEngineStore } from './memory-store.js'
