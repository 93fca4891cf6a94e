import neostandard from 'neostandard'

export default neostandard({ ts: true, ignores: ['dist/**', '.cache/**', 'node_modules/**', 'var/**'] })
